require "imap4flags";
if header :contains "subject" ["sale", "won", "offer"] { addflag "\\Flagged"; addflag "Junk"; }
