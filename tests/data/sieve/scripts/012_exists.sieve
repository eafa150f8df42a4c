require "fileinto";
if exists ["list-id"] { fileinto "Lists"; } elsif not exists "subject" { fileinto "NoSubject"; }
