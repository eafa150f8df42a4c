require ["fileinto", "encoded-character"];
if header :contains "subject" "${unicode:4F1A}" { fileinto "${hex:41 42}"; }
