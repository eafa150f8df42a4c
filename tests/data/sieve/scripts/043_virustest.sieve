require ["virustest", "fileinto", "relational", "comparator-i;ascii-numeric"];
if virustest :value "eq" :comparator "i;ascii-numeric" "5" { discard; stop; } elsif virustest :value "eq" :comparator "i;ascii-numeric" "1" { fileinto "Scanned"; }
