require ["fileinto", "variables"];
set "x" "kmp";
if string :is "${x}" "kmp" { fileinto "String"; }
