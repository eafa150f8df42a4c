require ["fileinto", "subaddress", "envelope", "variables"];
if envelope :detail "to" "*" { fileinto "sub-${1}"; } elsif address :user "from" "dave" { fileinto "Dave"; }
