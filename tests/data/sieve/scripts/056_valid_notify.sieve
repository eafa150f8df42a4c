require ["enotify", "fileinto"];
if valid_notify_method "mailto:a@example.com" { fileinto "Valid"; }
if valid_notify_method "xmpp:a@example.com" { fileinto "XMPP"; }
