require "fileinto";
if header :matches "subject" "*\\?*" { fileinto "Question"; } elsif header :matches "subject" "\\[*" { fileinto "Bracket"; }
