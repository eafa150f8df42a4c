require ["envelope", "subaddress", "fileinto", "variables"];
if envelope :user "to" "*" { set "u" "${1}"; }
if envelope :localpart "from" "*" { set "l" "${1}"; }
fileinto "e-${u}-${l}";
