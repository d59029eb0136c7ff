#!/usr/bin/env bash
# vardp accountant: --json output against Opacus reference values, text output, help, usage
# errors, the RDP order-edge warning and the PRV "no bound" report.
set -euo pipefail

BIN="${VARDP_BIN:?VARDP_BIN must point to the vardp executable}"
SHARED="${VARDP_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}"
FIXTURE="$SHARED/fixtures/accountant_reference.json"
PY=/usr/bin/python3
TMP="$(mktemp -d "${VARDP_TEST_TMP:-/tmp}/accountant_cli.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# check_json FILE PYTHON_EXPR : the expression sees `out` (the command's JSON) and `ref` (fixture).
check_json() {
  "$PY" - "$1" "$FIXTURE" "$2" <<'EOF' || fail "check '$2' on $(cat "$1")"
import json, math, sys
out = json.load(open(sys.argv[1]))
ref = json.load(open(sys.argv[2]))
eps_case = {c["id"]: c for c in ref["epsilon_cases"]}
nm_case = {c["id"]: c for c in ref["noise_multiplier_cases"]}
ok = eval(sys.argv[3])
sys.exit(0 if ok else 1)
EOF
}

# 1. RDP epsilon, steps from epochs (int(90/0.04) == 2250): Opacus' unit-test anchor.
"$BIN" accountant --sample-rate 0.04 --noise-multiplier 1.5 --epochs 90 --delta 1e-5 --json >"$TMP/rdp.json"
check_json "$TMP/rdp.json" 'out["steps"] == 2250 and out["accountant"] == "rdp" and out["delta"] == 1e-5 and out["sample_rate"] == 0.04 and out["noise_multiplier"] == 1.5'
check_json "$TMP/rdp.json" 'abs(out["epsilon"] / eps_case["opacus_test_q0.04_s1.5_T2250"]["eps_rdp"] - 1) < 1e-6'
check_json "$TMP/rdp.json" 'out["rdp_best_order"] == eps_case["opacus_test_q0.04_s1.5_T2250"]["rdp_best_alpha"] and out["rdp_best_order_at_edge"] is False'

# 2. PRV epsilon: within Opacus' reported bounds (and close to its upper bound).
"$BIN" accountant --sample-rate 0.04 --noise-multiplier 1.5 --steps 2249 --delta 1e-5 --accountant prv --json >"$TMP/prv.json"
check_json "$TMP/prv.json" 'out["accountant"] == "prv" and out["steps"] == 2249 and out["bound"] is True'
check_json "$TMP/prv.json" 'eps_case["opacus_test_q0.04_s1.5_T2249"]["prv_eps_lower"] <= out["epsilon"] <= eps_case["opacus_test_q0.04_s1.5_T2249"]["eps_prv"] + 1e-5'
check_json "$TMP/prv.json" 'abs(out["epsilon"] - eps_case["opacus_test_q0.04_s1.5_T2249"]["eps_prv"]) < 1e-5 and out["epsilon_lower"] < out["epsilon_estimate"] < out["epsilon"]'

# 3. Calibration: sigma for a target epsilon, as Opacus' get_noise_multiplier.
"$BIN" accountant --sample-rate 0.04 --target-epsilon 8 --epochs 90 --delta 1e-5 --json >"$TMP/cal.json"
check_json "$TMP/cal.json" 'abs(out["noise_multiplier"] - nm_case["opacus_test_rdp_epochs"]["sigma"]) < 1e-9 and out["epsilon"] <= 8 and 8 - out["epsilon"] <= 0.01 and out["steps"] == 2250'

# 4. Text output.
"$BIN" accountant --sample-rate 0.04 --noise-multiplier 1.5 --steps 2250 --delta 1e-5 >"$TMP/text.txt"
grep -q '^epsilon = 7.32911117' "$TMP/text.txt" || fail "text output: $(cat "$TMP/text.txt")"
"$BIN" accountant --sample-rate 0.04 --target-epsilon 8 --steps 2000 --delta 1e-5 >"$TMP/text2.txt"
grep -q '^noise_multiplier = 1.356201172' "$TMP/text2.txt" || fail "text output: $(cat "$TMP/text2.txt")"

# 5. --help documents every option with its default.
"$BIN" accountant --help >"$TMP/help.txt"
for opt in --sample-rate --noise-multiplier --target-epsilon --steps --epochs --delta --accountant \
           --epsilon-tolerance --eps-error --delta-error --prv-max-domain --json; do
  grep -q -- "$opt" "$TMP/help.txt" || fail "--help does not document $opt"
done
grep -q 'rdp' "$TMP/help.txt" && grep -q '(=0.01)' "$TMP/help.txt" && grep -q 'delta / 1000' "$TMP/help.txt" \
  || fail "--help does not show defaults: $(cat "$TMP/help.txt")"

# 6. Usage errors exit with 2.
set +e
"$BIN" accountant --sample-rate 0.04 --noise-multiplier 1 --target-epsilon 8 --steps 10 --delta 1e-5 >/dev/null 2>&1
[ $? -eq 2 ] || fail "both --noise-multiplier and --target-epsilon must be a usage error"
"$BIN" accountant --sample-rate 0.04 --noise-multiplier 1 --delta 1e-5 >/dev/null 2>&1
[ $? -eq 2 ] || fail "missing --steps/--epochs must be a usage error"
"$BIN" accountant --sample-rate 0.04 --noise-multiplier 1 --steps 10 --delta 1e-5 --accountant foo >/dev/null 2>&1
[ $? -eq 2 ] || fail "an unknown accountant must be a usage error"
set -e

# 7. Tiny noise: the optimal RDP order is the smallest of the list -> warning on stderr.
"$BIN" accountant --sample-rate 0.251 --noise-multiplier 0.3 --steps 318 --delta 0.000980392156862745 --json \
  >"$TMP/edge.json" 2>"$TMP/edge.err"
check_json "$TMP/edge.json" 'out["rdp_best_order_at_edge"] is True and out["rdp_best_order"] == 1.1'
grep -q 'warning: the optimal RDP order' "$TMP/edge.err" || fail "no order-edge warning: $(cat "$TMP/edge.err")"

# 8. PRV without a bound: reported as such (exit 1, epsilon null), never a number.
set +e
"$BIN" accountant --sample-rate 0.251 --noise-multiplier 0.2 --epochs 180 --delta 0.000980392156862745 \
  --accountant prv --json >"$TMP/nobound.json" 2>"$TMP/nobound.err"
rc=$?
set -e
[ $rc -eq 1 ] || fail "PRV without a bound must exit 1 (got $rc)"
check_json "$TMP/nobound.json" 'out["epsilon"] is None and out["bound"] is False and out["prv_breakdown"] == "domain_too_large" and out["steps"] == 717'
grep -q 'gives no bound' "$TMP/nobound.err" || fail "no 'no bound' message: $(cat "$TMP/nobound.err")"

echo "accountant_cli: all checks passed"
