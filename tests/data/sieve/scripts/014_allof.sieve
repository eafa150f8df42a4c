require "fileinto";
if allof (address :domain "from" "example.cn", header :contains "subject" "通知") { fileinto "CN-Notice"; }
