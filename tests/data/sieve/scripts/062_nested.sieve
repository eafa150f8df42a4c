require ["fileinto", "variables"];
if exists "from" {
  if address :domain "from" "example.org" {
    if header :contains "subject" "e" { set "x" "e"; } else { set "x" "no-e"; }
    fileinto "org-${x}";
  }
}
