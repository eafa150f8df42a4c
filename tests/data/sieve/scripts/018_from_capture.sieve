require ["fileinto", "variables"];
if address :matches :domain "from" "*.*" { set :lower "d" "${1}"; fileinto "from-${d}"; }
