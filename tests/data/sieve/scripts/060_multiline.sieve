require "reject";
if header :contains "from" "MAILER-DAEMON" {
  reject text:
This address does not accept bounces.
..Really.
.
;
}
