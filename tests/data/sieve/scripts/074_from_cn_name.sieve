require "fileinto";
if header :contains "from" ["张三", "老王"] { fileinto "Friends"; }
