require "fileinto";
if size :over 1 { fileinto "NonEmpty"; }
