require ["fileinto", "variables"];
if header :matches "subject" "[*] *" { fileinto "lists.${1}"; }
