require ["index", "date", "fileinto", "variables"];
if date :index 2 :zone "+0000" :matches "received" "time" "*" { fileinto "hop2-${1}"; }
