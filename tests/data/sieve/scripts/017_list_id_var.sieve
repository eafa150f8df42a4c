require ["fileinto", "variables"];
if header :matches "list-id" "*<*.*.*>" { fileinto "list/${2}"; stop; }
