require "fileinto";
if header :is "subject" "会议通知" { fileinto "Exact"; } elsif header :is "subject" "會議通知" { fileinto "Exact-Big5"; } else { fileinto "Other"; }
