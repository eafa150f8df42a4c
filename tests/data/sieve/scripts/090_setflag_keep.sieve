require "imap4flags";
setflag "\\Flagged";
keep;
addflag "late";
