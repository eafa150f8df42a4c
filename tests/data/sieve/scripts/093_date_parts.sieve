require ["date", "fileinto", "variables"];
if date :matches :originalzone "date" "zone" "*" { set "z" "${1}"; }
if date :matches :originalzone "date" "julian" "*" { set "j" "${1}"; }
fileinto "d-${z}-${j}";
