require "vnd.example.nothing";
keep;
