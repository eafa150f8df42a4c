require "fileinto";
if header :contains "subject" "会议" { fileinto "会议"; }
