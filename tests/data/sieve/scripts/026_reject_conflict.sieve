require ["reject", "fileinto"];
fileinto "A";
if header :contains "subject" "you won" { reject "spam"; }
