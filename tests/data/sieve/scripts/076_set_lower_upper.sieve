require ["fileinto", "variables"];
if header :matches "from" "*<*@*>" { set :lower :upperfirst "who" "${2}"; fileinto "who-${who}"; }
