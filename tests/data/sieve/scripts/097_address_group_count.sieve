require ["fileinto", "relational", "comparator-i;ascii-numeric", "variables"];
if address :count "ge" :comparator "i;ascii-numeric" "to" "3" { fileinto "three"; } elsif address :count "eq" :comparator "i;ascii-numeric" "to" "2" { fileinto "two"; }
