require "fileinto";
if header :contains "subject" ["會議", "通知"] { fileinto "Notices"; }
