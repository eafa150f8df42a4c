require "ereject";
if exists "x-virus-status" { ereject "virus"; }
