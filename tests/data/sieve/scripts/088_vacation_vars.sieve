require ["vacation", "variables"];
if header :matches "subject" "*" { vacation :days 2 :subject "Re: ${1}" "收到：${1}"; }
