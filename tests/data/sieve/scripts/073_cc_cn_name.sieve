require "fileinto";
if header :contains ["to", "cc"] ["王五", "趙六"] { fileinto "Named"; }
