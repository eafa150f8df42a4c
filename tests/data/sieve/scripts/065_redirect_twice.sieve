redirect "a@example.net";
redirect "a@example.net";
redirect "b@example.net";
