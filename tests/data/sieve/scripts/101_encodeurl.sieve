require ["enotify", "variables"];
if header :matches "subject" "*" { set :encodeurl "s" "${1}"; notify :message "new" "mailto:me@sms.example.cn?subject=${s}"; }
