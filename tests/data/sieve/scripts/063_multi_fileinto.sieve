require ["fileinto"];
fileinto "One";
fileinto "Two";
fileinto "One";
