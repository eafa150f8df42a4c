require ["spamtest", "fileinto", "relational", "comparator-i;ascii-numeric"];
if spamtest :value "ge" :comparator "i;ascii-numeric" "6" { fileinto "Junk"; } elsif spamtest :value "eq" :comparator "i;ascii-numeric" "0" { fileinto "Untested"; }
