require ["include", "variables"];
global "tag";
set "tag" "x";
include :global "spam";
include :global "gsub";
include "sub";
include :once "sub";
include :optional "missing";
