require "enotify";
if exists "from" { notify :from "sieve@example.com" "mailto:phone@sms.example.cn"; }
