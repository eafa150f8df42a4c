require ["date", "fileinto", "variables"];
if date :matches :zone "+0000" "date" "date" "*" { fileinto "utc-${1}"; }
