require ["vacation", "imap4flags"];
addflag "\\Seen";
vacation :days 1 "Flagged and away.";
