require "include";
include "absent";
