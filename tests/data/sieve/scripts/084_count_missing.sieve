require ["fileinto", "relational", "comparator-i;ascii-numeric"];
if header :count "eq" :comparator "i;ascii-numeric" "x-nothing" "0" { fileinto "Zero"; }
