require ["date", "fileinto", "variables"];
if date :matches :originalzone "date" "std11" "*" { fileinto "${1}"; }
