require ["fileinto", "envelope"];
if envelope :is "from" "" { fileinto "Bounces"; } elsif envelope :domain "from" "example.cn" { fileinto "CN"; }
