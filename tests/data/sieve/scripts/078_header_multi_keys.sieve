require "fileinto";
if header :matches ["subject", "x-mailer"] ["*foxmail*", "*report*", "*hops*"] { fileinto "Matched"; }
