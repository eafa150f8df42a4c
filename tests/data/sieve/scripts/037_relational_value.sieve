require ["fileinto", "relational"];
if header :value "lt" "subject" "M" { fileinto "A-L"; } else { fileinto "M-Z"; }
