#!/bin/sh
# Checks that every program the tests run is installed (the list is
# tests/tools.txt, or $TOOLS_FILE; `perl:Module` names a Perl module, an
# absolute path a file or directory that must exist), and
# when some are not, names them and prints the one command that installs them
# all. Exit 0: all there; 1: some missing. `make test` runs this first.
set -eu
list=${TOOLS_FILE:-$(dirname "$0")/tools.txt}
missing_tools=
missing_pkgs=
while read -r tool pkg; do
  case $tool in '' | '#'*) continue ;; esac
  case $tool in
    perl:*) perl -M"${tool#perl:}" -e 1 >/dev/null 2>&1 && continue ;;
    /*) [ -e "$tool" ] && continue ;;
    *) command -v "$tool" >/dev/null 2>&1 && continue ;;
  esac
  missing_tools="$missing_tools $tool"
  case " $missing_pkgs " in
    *" $pkg "*) ;;
    *) missing_pkgs="$missing_pkgs $pkg" ;;
  esac
done < "$list"
[ -z "$missing_tools" ] && exit 0
echo "The tests need programs that are not installed:$missing_tools" >&2
if command -v apt-get >/dev/null 2>&1; then
  echo "Install them with:" >&2
  echo "  apt-get install -y --no-install-recommends$missing_pkgs" >&2
else
  echo "Install the packages that provide them (Debian names:$missing_pkgs)." >&2
fi
exit 1
