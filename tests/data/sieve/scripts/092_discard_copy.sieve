require ["fileinto", "copy"];
discard;
fileinto :copy "Saved";
