require ["fileinto", "variables"];
if header :matches "subject" "??*" { fileinto "p-${1}${2}"; }
