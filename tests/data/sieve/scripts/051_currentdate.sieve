require ["date", "fileinto", "relational"];
if currentdate :value "ge" "year" "2020" { fileinto "Now"; }
