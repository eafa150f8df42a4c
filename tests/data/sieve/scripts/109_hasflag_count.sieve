require ["imap4flags", "fileinto", "relational", "comparator-i;ascii-numeric"];
addflag ["a b", "c", "A"];
if hasflag :count "eq" :comparator "i;ascii-numeric" "3" { fileinto "Three"; }
