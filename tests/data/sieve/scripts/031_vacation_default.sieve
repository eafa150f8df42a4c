require "vacation";
vacation "Default period.";
