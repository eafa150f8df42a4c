require "enotify";
if header :contains "subject" ["紧急", "urgent", "won"] { notify :importance "1" :message "Urgent mail" "mailto:13800138000@sms.example.cn"; }
