require ["duplicate", "fileinto"];
if duplicate { fileinto "Dup"; } else { fileinto "First"; }
