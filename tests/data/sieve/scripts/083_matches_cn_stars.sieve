require ["fileinto", "variables"];
if header :matches "subject" "*通知*" { fileinto "notice[${1}|${2}]"; }
