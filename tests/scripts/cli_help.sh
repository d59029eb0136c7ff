#!/usr/bin/env bash
# vardp --help lists the commands; every command documents its options with --help.
source "$(dirname "$0")/../support/script_lib.sh"
"$VARDP_BIN" --help > "$TMP/help.txt"
grep -q "exit codes: 0 success, 1 error, 2 usage error, 75" "$TMP/help.txt" || fail "exit codes not documented"
cmds=$(awk '/^commands:/{on=1;next} on && /^  [a-z]/{print $1} /^$/{if(on)exit}' "$TMP/help.txt")
[ -n "$cmds" ] || fail "no commands listed"
for c in $cmds; do
  "$VARDP_BIN" "$c" --help > "$TMP/$c.txt" || fail "vardp $c --help exited $?"
  grep -q "usage:" "$TMP/$c.txt" || fail "vardp $c --help prints no usage"
  grep -q -- "--help" "$TMP/$c.txt" || fail "vardp $c --help lists no options"
done
set +e
"$VARDP_BIN" no-such-command 2> "$TMP/err.txt"; rc=$?
set -e
[ "$rc" -eq 2 ] || fail "unknown command exited $rc, expected 2"
grep -q "unknown command" "$TMP/err.txt" || fail "no message for an unknown command"
echo "checked: $(echo $cmds | wc -w) commands"
