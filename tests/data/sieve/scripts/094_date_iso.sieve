require ["date", "fileinto", "variables"];
if date :matches :zone "+0100" "date" "iso8601" "*" { fileinto "${1}"; }
