require ["imap4flags", "fileinto"];
addflag ["A", "B"];
if hasflag :is "b" { fileinto "HasB"; }
removeflag "a";
if hasflag "A" { fileinto "HasA"; }
