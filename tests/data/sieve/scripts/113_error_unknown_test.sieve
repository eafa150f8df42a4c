require "fileinto";
if true { keep; }
if frobnicate "x" { discard; }
