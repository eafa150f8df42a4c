require "fileinto";
if address :all :is ["to", "cc"] "me@example.com" { fileinto "Direct"; } else { fileinto "Indirect"; }
