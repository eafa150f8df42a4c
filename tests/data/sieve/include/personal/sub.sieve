require ["fileinto"];
if header :contains "subject" "report" { fileinto "Reports"; stop; }
fileinto "FromPersonal";
