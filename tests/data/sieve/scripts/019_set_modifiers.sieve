require ["fileinto", "variables"];
set :upperfirst "a" "inbox";
set :length "n" "会议通知";
set :quotewildcard "q" "a*b?";
fileinto "${a}.${n}.${q}";
