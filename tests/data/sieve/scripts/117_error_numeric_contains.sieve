require "comparator-i;ascii-numeric";
if header :contains :comparator "i;ascii-numeric" "x-priority" "1" { discard; }
