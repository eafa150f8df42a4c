require ["index", "fileinto", "variables"];
if header :index 1 :last :matches "received" "from *.example *" { fileinto "first-${1}"; }
