require "fileinto";
if exists ["from", "to", "date", "message-id"] { fileinto "Complete"; }
