require ["body", "fileinto"];
if body :raw :matches "*--b?--*" { fileinto "Multipart"; }
