require ["body", "fileinto"];
if body :content "text/html" :contains "quarterly" { fileinto "HTML"; }
