require "fileinto";
if anyof (allof (exists "date", not exists "list-id", size :under 1M), anyof (false, header :is "precedence" "bulk")) { fileinto "Personal"; }
