#!/usr/bin/env bash
# analysis/report.py on synthetic run directories written to docs/formats/run.md
# (tests/python/make_fake_runs.py): every table has its rows, every figure is a PNG, a resumed
# run's duplicate steps read as the last entry, an unfinished run is listed, not fatal.
source "$(dirname "$0")/../support/script_lib.sh"
SRC=${VARDP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
"$PY" "$SRC/tests/python/make_fake_runs.py" "$TMP/runs"
"$PY" "$SRC/analysis/report.py" "$TMP/runs" --out "$TMP/report" | tee "$TMP/report.log"
grep -q "^54 runs (1 unfinished)" "$TMP/report.log" || fail "expected 54 runs, 1 unfinished"

rows() { tail -n +2 "$TMP/report/$1.csv" | wc -l; }
for spec in table1:6 table2:4 table3:7 table9:8 table10:4; do
  t=${spec%%:*} n=${spec##*:}
  [ -s "$TMP/report/$t.md" ] || fail "no $t.md"
  [ "$(rows "$t")" -eq "$n" ] || fail "$t.csv has $(rows "$t") rows, expected $n"
done
# Table 1: model, method, trainable params, then one FID column per dataset.
head -n 1 "$TMP/report/table1.csv" | grep -q "^model,method,trainable params,Food-101,CUB-200-2011,Oxford Flowers,Stanford Cars,Oxford-IIIT Pet" ||
  fail "table1 header: $(head -n 1 "$TMP/report/table1.csv")"
grep -q "^VAR-d16,FFT,310283520,12.0,9.0,15.0,8.0,18.0" "$TMP/report/table1.csv" || fail "table1 FFT d16 row"
grep -q "^VAR-d20,LNTuning," "$TMP/report/table1.csv" || fail "table1 LNTuning d20 row"
# Table 3: the seven budgets in order; Table 10: the paper's four adaptations in its order.
[ "$(tail -n +2 "$TMP/report/table3.csv" | cut -d, -f1 | tr '\n' ' ')" = "1.0 10.0 20.0 50.0 100.0 500.0 1000.0 " ] ||
  fail "table3 epsilons"
[ "$(tail -n +2 "$TMP/report/table10.csv" | cut -d, -f1 | tr '\n' ' ')" = "LoRA-A LoRA-M LoRA-AM+LN LNTuning " ] ||
  fail "table10 rows"
grep -q "^LoRA-A,.*,1677312," "$TMP/report/table10.csv" || fail "table10 LoRA-A trainable params"
grep -q "^LoRA,128,Oxford Flowers,VAR-d16,.*,3$" "$TMP/report/table2.csv" || fail "table2 LoRA k=128 should merge 3 runs"
for png in pflops pflops_dp fid_steps eps_fid; do
  f="$TMP/report/$png.png"
  [ "$(head -c 8 "$f" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "$png.png is not a PNG"
  [ "$(stat -c %s "$f")" -gt 10000 ] || fail "$png.png is suspiciously small"
done
[ "$(grep -c . "$TMP/report/runs.csv")" -eq 55 ] || fail "runs.csv should list 54 runs"
# A resumed run logged steps 21..30 twice; the reader keeps the later entry.
"$PY" - "$SRC/analysis" "$TMP/runs/table1/flowers102_lora_d16" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import vardp_runs
run = vardp_runs.load_run(sys.argv[2])
steps, loss = run.series["loss"]
assert list(steps) == sorted(set(steps)), "steps not unique and sorted"
assert loss[list(steps).index(30)] > 50, "kept the first of a duplicated step"
assert run.done and run.final["step"] == run.attrs["total_steps"] and len(run.evals) == 4, run.evals
print("resumed run reads as", len(steps), "unique steps; evals at", [e["step"] for e in run.evals])
PY
echo "analysis report ok"
