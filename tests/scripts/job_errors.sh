#!/usr/bin/env bash
# Errors end MPI jobs: one failing rank aborts the job quickly; a config error every rank sees
# ends it collectively with exit 2 and a message naming key, file and line.
source "$(dirname "$0")/../support/script_lib.sh"

start=$(date +%s)
set +e
timeout 60 mpirun -np 2 --oversubscribe "$VARDP_BIN" selftest --fail-rank 1 > "$TMP/out.txt" 2>&1; rc=$?
set -e
elapsed=$(( $(date +%s) - start ))
cat "$TMP/out.txt"
[ "$rc" -ne 0 ] || fail "job with a failing rank exited 0"
[ "$rc" -ne 124 ] || fail "job with a failing rank hung (timeout)"
[ "$elapsed" -le 30 ] || fail "job with a failing rank took ${elapsed}s (> 30 s)"
grep -q "\[rank 1\] error: selftest: failure requested" "$TMP/out.txt" || fail "no [rank 1] error line"

printf '[train]\nlr = 0.1\n\nepohcs = 3\n' > "$TMP/bad.toml"
set +e
timeout 60 mpirun -np 2 --oversubscribe "$VARDP_BIN" selftest --config "$TMP/bad.toml" > "$TMP/out2.txt" 2>&1; rc=$?
set -e
cat "$TMP/out2.txt"
[ "$rc" -eq 2 ] || fail "config error exited $rc, expected 2"
grep -q "bad.toml:4" "$TMP/out2.txt" || fail "config error does not name file:line"
grep -q "train.epohcs" "$TMP/out2.txt" || fail "config error does not name the key"
[ "$(grep -c 'error:' "$TMP/out2.txt")" -eq 1 ] || fail "collective error should be printed once (rank 0)"

set +e
"$VARDP_BIN" config show --config "$TMP/bad.toml" 2> "$TMP/err3.txt"; rc=$?
set -e
[ "$rc" -eq 2 ] || fail "vardp config show with a bad key exited $rc"
echo "failing rank ended the job in ${elapsed}s with exit $rc"
