require ["fileinto", "copy"];
fileinto :copy "INBOX";
fileinto :copy "Copy";
