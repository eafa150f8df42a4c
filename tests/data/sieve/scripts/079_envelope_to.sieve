require ["fileinto", "envelope"];
if envelope :localpart :is "to" "me" { fileinto "Me"; } else { fileinto "NotMe"; }
