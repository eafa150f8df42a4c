require "fileinto";
if header :contains "subject" "zzz" { fileinto "Z"; }
elsif header :contains "subject" "report" { fileinto "R"; }
elsif header :contains "subject" "e" { fileinto "E"; }
else { fileinto "Else"; }
