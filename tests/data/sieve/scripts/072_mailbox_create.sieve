require ["fileinto", "mailbox"];
if header :contains "subject" "report" { fileinto :create "Reports/2026"; }
