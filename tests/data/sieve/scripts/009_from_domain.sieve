require "fileinto";
if address :domain :is "from" "example.cn" { fileinto "China"; } elsif address :domain :is "from" "example.tw" { fileinto "Taiwan"; }
