require "fileinto";
if anyof (not exists "message-id", header :contains "subject" "sale") { fileinto "Suspicious"; }
