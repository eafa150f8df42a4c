require ["body", "fileinto"];
if body :contains "quarterly" { fileinto "Reports"; }
