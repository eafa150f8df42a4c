require "vacation";
vacation :days 5 :subject "外出" "我在休假，下周回来。";
