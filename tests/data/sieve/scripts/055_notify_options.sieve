require ["enotify", "variables"];
if address :matches "from" "*" { notify :message "From ${1}" "mailto:alert@example.com?subject=mail"; }
