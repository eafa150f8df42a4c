require "reject";
if header :contains "subject" "发票" { reject "拒收发票广告。"; }
