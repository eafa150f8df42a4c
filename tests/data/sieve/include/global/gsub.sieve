require ["fileinto", "variables", "include"];
global "tag";
fileinto "Global-${tag}";
return;
fileinto "Never";
