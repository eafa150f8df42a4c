require ["fileinto", "relational", "comparator-i;ascii-numeric"];
if header :value "le" :comparator "i;ascii-numeric" "x-priority" "2" { fileinto "Important"; }
