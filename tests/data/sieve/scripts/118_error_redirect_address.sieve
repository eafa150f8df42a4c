
redirect "not an address";
