require ["date", "fileinto", "relational"];
if date :value "ge" :originalzone "date" "hour" "09" { fileinto "Morning"; }
