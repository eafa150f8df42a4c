require ["fileinto", "relational", "comparator-i;ascii-numeric"];
if header :count "ge" :comparator "i;ascii-numeric" "received" "2" { fileinto "Hops"; }
