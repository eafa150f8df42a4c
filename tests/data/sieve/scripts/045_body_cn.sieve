require ["body", "fileinto"];
if body :text :contains ["合同", "開會", "宕机"] { fileinto "CN-Body"; }
