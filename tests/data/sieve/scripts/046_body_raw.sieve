require ["body", "fileinto"];
if body :raw :contains "Content-Type: application/pdf" { fileinto "PDF"; }
