require ["imap4flags", "variables", "fileinto"];
set "fl" "";
addflag "fl" "one two";
if hasflag :contains "fl" "tw" { fileinto :flags "${fl}" "Var"; }
