require "fileinto";
if address :domain ["reply-to", "sender"] ["work.example", "example.org"] { fileinto "Delegated"; }
