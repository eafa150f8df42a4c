require ["imap4flags", "fileinto"];
setflag "\\Seen";
fileinto :flags ["\\Answered", "work"] "Work";
removeflag "\\Seen";
keep;
