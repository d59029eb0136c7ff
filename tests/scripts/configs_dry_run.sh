#!/usr/bin/env bash
# Every paper config is valid and accepted by `vardp train --dry-run`:
#  1. configs/experiments/** is what configs/generate.py makes from the fragments;
#  2. every config file loads (`vardp config show`: unknown keys, types, ranges);
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
for f in "${all[@]}"; do
  "$VARDP_BIN" config show --config "$f" > /dev/null 2> "$TMP/err" || { cat "$TMP/err"; failed+=("config show $f"); }
done
echo "config show: ${#all[@]} files"

sweep_points() { "$VARDP_BIN" sweep list "$1" | wc -l; }
[ "$(sweep_points configs/sweeps/eps.toml)" -eq 7 ] || failed+=("eps sweep is not 7 points")
[ "$(sweep_points configs/sweeps/k.toml)" -eq 8 ] || failed+=("k sweep is not 8 points")
for s in configs/sweeps/*.toml; do
  base=$(sed -n 's/^base_config = "\(.*\)"$/\1/p' "$s")
  n=$(sweep_points "$s")
  for ((i = 0; i < n; i++)); do
    "$VARDP_BIN" config show --config "configs/sweeps/$base" --sweep "$s" --sweep-index "$i" > /dev/null ||
      failed+=("$s point $i on $base")
  done
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
