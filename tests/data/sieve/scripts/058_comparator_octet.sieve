require "fileinto";
if header :is :comparator "i;octet" "subject" "Hello there" { fileinto "Octet"; } elsif header :is "subject" "HELLO THERE" { fileinto "Casemap"; }
