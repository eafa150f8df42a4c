require "fileinto";
if address :localpart :matches "from" "*a*" { fileinto "HasA"; }
