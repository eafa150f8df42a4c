keep;
elsif true { discard; }
