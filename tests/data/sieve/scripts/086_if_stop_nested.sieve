require "fileinto";
if exists "from" {
  if header :contains "subject" "e" { fileinto "E"; stop; }
  fileinto "NoE";
}
fileinto "After";
