#!/usr/bin/env bash
# Every paper config is valid and accepted by `vardp train --dry-run`:
#  1. configs/experiments/** is what configs/generate.py makes from the fragments;
#  2. every config file loads (`vardp config check`: unknown keys, types, ranges), and
#     `config check` names a bad file and exits 2;
#  3. the sweeps enumerate as documented (eps: 7 points, k: 8) on their base configs;
#  4. `vardp train --config F --dry-run` succeeds for every experiment (DRY_RUN_ARGS adds
#     options, e.g. --set model.var=... where the placeholder weights are absent).
# Failing files are listed by name; the test fails at the end.
source "$(dirname "$0")/../support/script_lib.sh"
SRC=${VARDP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$SRC" || exit 1
"$PY" configs/generate.py --check || fail "configs/experiments is stale: run configs/generate.py"

failed=()
mapfile -t all < <(find configs/models configs/datasets configs/methods configs/experiments -name '*.toml' | sort)
# One process checks them all (`config check`: one line per file, exit 2 if any fails).
"$VARDP_BIN" config check "${all[@]}" > "$TMP/check.out" 2>&1 || {
  grep -v '^ok ' "$TMP/check.out"; failed+=("config check"); }
[ "$(grep -c '^ok ' "$TMP/check.out")" -eq "${#all[@]}" ] || failed+=("config check did not report every file")
echo "config check: ${#all[@]} files"
printf '[train]\nepochz = 3\n' > "$TMP/bad.toml"
set +e
"$VARDP_BIN" config check configs/demo/lora.toml "$TMP/bad.toml" > "$TMP/bad.out" 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] || failed+=("config check of a bad file exited $rc, not 2")
grep -q "^ok configs/demo/lora.toml$" "$TMP/bad.out" || failed+=("config check: good file not ok next to a bad one")
grep -q "^FAILED $TMP/bad.toml: .*epochz" "$TMP/bad.out" || failed+=("config check: bad file or key not named")

sweep_points() { "$VARDP_BIN" sweep list "$1" | wc -l; }
[ "$(sweep_points configs/sweeps/eps.toml)" -eq 7 ] || failed+=("eps sweep is not 7 points")
[ "$(sweep_points configs/sweeps/k.toml)" -eq 8 ] || failed+=("k sweep is not 8 points")
for s in configs/sweeps/*.toml; do
  base=$(sed -n 's/^base_config = "\(.*\)"$/\1/p' "$s")
  n=$(sweep_points "$s")
  "$VARDP_BIN" config check "configs/sweeps/$base" --sweep "$s" > "$TMP/sweep.out" 2>&1 ||
    { cat "$TMP/sweep.out"; failed+=("$s on $base"); }
  [ "$(grep -c '^ok ' "$TMP/sweep.out")" -eq "$n" ] || failed+=("$s: config check did not check its $n points")
done
echo "sweeps: eps $(sweep_points configs/sweeps/eps.toml) points, k $(sweep_points configs/sweeps/k.toml) points"

read -r -a extra <<< "${DRY_RUN_ARGS:-}"
mapfile -t experiments < <(find configs/experiments -name '*.toml' | sort)
# Two dry runs at a time (each is one mostly single-threaded process building a VAR-d16/d20).
dry_run() {  # index file
  if "$VARDP_BIN" train --config "$2" --dry-run "${extra[@]}" > "$TMP/dry-$1.out" 2>&1; then
    echo ok > "$TMP/dry-$1.status"
  else
    echo failed > "$TMP/dry-$1.status"
  fi
}
for i in "${!experiments[@]}"; do
  dry_run "$i" "${experiments[$i]}" &
  (( (i + 1) % 2 == 0 )) && wait
done
wait
for i in "${!experiments[@]}"; do
  f=${experiments[$i]}
  if [ "$(cat "$TMP/dry-$i.status" 2>/dev/null)" = ok ]; then
    echo "dry-run ok: $f"
  else
    echo "dry-run FAILED: $f"
    tail -n 5 "$TMP/dry-$i.out"
    failed+=("dry-run $f")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  printf 'failed: %s\n' "${failed[@]}" >&2
  fail "${#failed[@]} check(s) failed"
fi
echo "all ${#experiments[@]} experiment configs pass --dry-run"
