require ["vacation", "vacation-seconds"];
vacation :seconds 172800 "Two days.";
