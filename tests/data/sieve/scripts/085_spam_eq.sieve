require ["spamtest", "fileinto", "variables", "relational", "comparator-i;ascii-numeric"];
if spamtest :matches "*" { fileinto "spam-${1}"; }
