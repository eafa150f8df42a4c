require ["date", "fileinto"];
if date :is :zone "+0800" "date" "weekday" ["0", "6"] { fileinto "Weekend"; } else { fileinto "Weekday"; }
