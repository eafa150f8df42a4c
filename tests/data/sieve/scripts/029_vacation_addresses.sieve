require "vacation";
vacation :addresses ["team@example.org", "me+lists@example.com"] :from "me@example.com" "Away.";
