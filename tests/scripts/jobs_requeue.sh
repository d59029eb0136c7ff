#!/usr/bin/env bash
# The Slurm array/requeue flow with stand-in srun, scontrol, sbatch and mpirun first on PATH:
# array index -> sweep point -> run directory; SIGUSR1 (what --signal=B:USR1 sends) -> the run
# checkpoints and exits 75 -> the job requeues itself -> the rerun resumes -> DONE; then the
# dependent sample + eval job, submission with the right array and dependency, and the mpirun
# flow for a workstation.
#
# Most of it simulates `vardp train`, `sample` and `eval` with a stand-in vardp (the real binary
# answers every other command: config show, sweep list), which makes the many branches cheap; the
# last part drives the same Slurm flow with the real vardp on the tiny fixture model: a real
# checkpoint on SIGUSR1, exit 75, requeue, a real resume, completion, then sampling.
source "$(dirname "$0")/../support/script_lib.sh"
SRC=${VARDP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}

# A copy of the repository's jobs/ and configs/: the scripts create logs/ and runs/ in place.
mkdir -p "$TMP/repo" "$TMP/bin"
cp -r "$SRC/jobs" "$SRC/configs" "$TMP/repo/"
cd "$TMP/repo" || exit 1
export REAL_VARDP=$VARDP_BIN VARDP_BIN=$TMP/bin/vardp VARDP_ROOT=$TMP/repo FAKE_LOG=$TMP/slurm.log
export PATH=$TMP/bin:$PATH
unset SLURM_JOB_ID SLURM_ARRAY_JOB_ID SLURM_ARRAY_TASK_ID SLURM_RESTART_COUNT INDEX

cat > "$TMP/bin/vardp" <<'EOF'
#!/usr/bin/env bash
# Stand-in vardp. train: FAKE_STEPS steps of FAKE_STEP_SECONDS, resumable from `latest`; SIGUSR1
# or SIGTERM -> checkpoint, exit 75; FAKE_STOP_AT=s -> checkpoint and exit 75 at step s once (as
# train.max_hours would). sample/eval: record the call. Anything else: the real vardp.
set -euo pipefail
cmd=$1
shift
run_dir() { "$REAL_VARDP" config show "$@" | sed -n '/^\[output\]/,/^\[/s/^dir = "\(.*\)"$/\1/p'; }
case $cmd in
  train)
    args=() resume=""
    while [ $# -gt 0 ]; do
      case $1 in --resume) resume=$2; shift 2 ;; *) args+=("$1"); shift ;; esac
    done
    dir=$(run_dir "${args[@]}")
    mkdir -p "$dir"
    [ ! -f "$dir/DONE" ] || { echo "fake train: $dir already finished"; exit 0; }
    step=0
    if [ "$resume" = auto ] && [ -f "$dir/latest" ]; then
      ckpt=$(cat "$dir/latest")
      step=${ckpt#checkpoint-}
      step=$((10#${step%.h5}))
      echo "fake train: resuming from step $step ($ckpt)"
    fi
    start=$step stop=""
    trap 'stop=1' USR1 TERM
    while [ "$step" -lt "${FAKE_STEPS:-40}" ]; do
      sleep "${FAKE_STEP_SECONDS:-0.05}"
      step=$((step + 1))
      echo "$step" > "$dir/progress"
      if [ -n "$stop" ] || { [ "$start" -lt "${FAKE_STOP_AT:-0}" ] && [ "$step" -eq "${FAKE_STOP_AT:-0}" ]; }; then
        ckpt=$(printf 'checkpoint-%08d.h5' "$step")
        echo "$step" > "$dir/$ckpt"
        echo "$ckpt" > "$dir/latest"
        echo "fake train: checkpoint at step $step, exit 75"
        exit 75
      fi
    done
    echo "steps $step" > "$dir/DONE"
    echo "fake train: finished $dir at step $step" ;;
  sample | eval)
    run=""
    while [ $# -gt 0 ]; do case $1 in --run) run=$2; shift 2 ;; *) shift ;; esac; done
    [ -f "$run/DONE" ] || { echo "fake $cmd: $run not finished" >&2; exit 1; }
    echo "$cmd" >> "$run/evaluated" ;;
  *) exec "$REAL_VARDP" "$cmd" "$@" ;;
esac
EOF
cat > "$TMP/bin/srun" <<'EOF'
#!/usr/bin/env bash
# Stand-in srun: drop the options, run the command in this process (signals reach it directly).
echo "srun $*" >> "$FAKE_LOG"
while [ "${1#-}" != "$1" ]; do shift; done
exec "$@"
EOF
cat > "$TMP/bin/mpirun" <<'EOF'
#!/usr/bin/env bash
# Stand-in mpirun: one process whatever -np says.
echo "mpirun $*" >> "$FAKE_LOG"
while [ "${1#-}" != "$1" ]; do case $1 in -np | -n) shift 2 ;; *) shift ;; esac; done
exec "$@"
EOF
cat > "$TMP/bin/scontrol" <<'EOF'
#!/usr/bin/env bash
echo "scontrol $*" >> "$FAKE_LOG"
EOF
cat > "$TMP/bin/sbatch" <<'EOF'
#!/usr/bin/env bash
# Stand-in sbatch: records the call, hands out job ids 5001, 5002, ...
n=$(( $(cat "$FAKE_LOG.ids" 2>/dev/null || echo 5000) + 1 ))
echo "$n" > "$FAKE_LOG.ids"
echo "sbatch $*" >> "$FAKE_LOG"
case " $* " in *" --parsable "*) echo "$n" ;; *) echo "Submitted batch job $n" ;; esac
EOF
chmod +x "$TMP/bin"/*
: > "$FAKE_LOG"

wait_for_step() {  # FILE N: until the run's progress file says >= N
  for _ in $(seq 1 400); do
    [ "$(cat "$1" 2>/dev/null || echo 0)" -ge "$2" ] && return 0
    sleep 0.05
  done
  fail "no progress to step $2 in $1"
}

# --- the documented sweeps -------------------------------------------------------------------
[ "$("$REAL_VARDP" sweep list configs/sweeps/eps.toml | wc -l)" -eq 7 ] || fail "eps sweep is not 7 points"
[ "$("$REAL_VARDP" sweep list configs/sweeps/k.toml | wc -l)" -eq 8 ] || fail "k sweep is not 8 points"
[ "$(grep -c '^configs/' configs/sweeps/table1.list)" -eq 30 ] || fail "table1.list is not 30 configs"

# --- array element 3 of the epsilon sweep: signal, requeue, resume, finish ----------------------
EPS=(configs/experiments/sweeps/eps_dp-lora_k32_d16.toml configs/sweeps/eps.toml --set "output.dir=$TMP/runs/eps")
RUN="$TMP/runs/eps/0003-target_epsilon=50.0"
export SLURM_JOB_ID=1003 SLURM_ARRAY_JOB_ID=1000 SLURM_ARRAY_TASK_ID=3 SLURM_SUBMIT_DIR=$TMP/repo
FAKE_STEPS=200 bash jobs/slurm/train.sbatch "${EPS[@]}" >> "$TMP/job.log" 2>&1 &
job=$!
wait_for_step "$RUN/progress" 3
kill -USR1 "$job"  # what #SBATCH --signal=B:USR1@600 does before the time limit
rc=0
wait "$job" || rc=$?
cat "$TMP/job.log"
[ "$rc" -eq 0 ] || fail "batch script exited $rc after requeueing"
grep -qx "scontrol requeue 1003" "$FAKE_LOG" || fail "no 'scontrol requeue 1003'"
[ -f "$RUN/latest" ] || fail "no checkpoint marker in $RUN"
[ ! -f "$RUN/DONE" ] || fail "run finished although it was signalled"
grep -q "sweep point 3 dp.target_epsilon=50.0" "$TMP/job.log" || fail "log does not name the sweep point"

# Slurm starts the requeued element again: same id, same arguments, SLURM_RESTART_COUNT=1.
SLURM_RESTART_COUNT=1 FAKE_STEPS=200 FAKE_STEP_SECONDS=0.001 \
  bash jobs/slurm/train.sbatch "${EPS[@]}" >> "$TMP/job.log" 2>&1 || fail "requeued run failed"
tail -n 4 "$TMP/job.log"
[ -f "$RUN/DONE" ] || fail "requeued run did not finish"
grep -q "fake train: resuming from step [1-9]" "$TMP/job.log" || fail "requeued run did not resume"
[ "$(grep -c '^scontrol requeue' "$FAKE_LOG")" -eq 1 ] || fail "requeued more than once"
# A spurious restart of a finished element is harmless.
bash jobs/slurm/train.sbatch "${EPS[@]}" >> "$TMP/job.log" 2>&1 || fail "rerun of a finished run failed"
grep -q "already finished" "$TMP/job.log" || fail "finished run was retrained"

# The dependent sample + eval element finds the same directory.
bash jobs/slurm/eval.sbatch "${EPS[@]}" >> "$TMP/job.log" 2>&1 || fail "eval job failed"
[ "$(cat "$RUN/evaluated")" = "$(printf 'sample\neval')" ] || fail "eval job did not sample and evaluate $RUN"

# An index past the last point fails clearly instead of training something else.
rc=0
SLURM_ARRAY_TASK_ID=7 bash jobs/slurm/train.sbatch "${EPS[@]}" > "$TMP/bad.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && grep -q "has no point 7" "$TMP/bad.log" || fail "index 7 of a 7-point sweep accepted"

# Table 1 grid: index i -> line i of the list.
SLURM_ARRAY_TASK_ID=4 FAKE_STEPS=2 bash jobs/slurm/train.sbatch --list configs/sweeps/table1.list \
  --set "output.dir=$TMP/runs/t1" > "$TMP/t1.log" 2>&1 || { cat "$TMP/t1.log"; fail "table1 element failed"; }
fifth=$(grep '^configs/' configs/sweeps/table1.list | sed -n 5p)
grep -q "table1.list\[4\] = $fifth" "$TMP/t1.log" || fail "index 4 did not map to $fifth"
unset SLURM_JOB_ID SLURM_ARRAY_JOB_ID SLURM_ARRAY_TASK_ID SLURM_SUBMIT_DIR

# --- submission: array sized from the sweep, eval element i after training element i -----------
: > "$FAKE_LOG"
bash jobs/submit.sh eps > "$TMP/submit.log" 2>&1 || { cat "$TMP/submit.log"; fail "submit.sh eps"; }
bash jobs/submit.sh table1 >> "$TMP/submit.log" 2>&1 || { cat "$TMP/submit.log"; fail "submit.sh table1"; }
bash jobs/submit.sh run configs/experiments/table2/flowers102_dp-lora_eps10_k1_d16.toml >> "$TMP/submit.log" 2>&1 ||
  { cat "$TMP/submit.log"; fail "submit.sh run"; }
cat "$FAKE_LOG"
mapfile -t calls < <(grep '^sbatch' "$FAKE_LOG")
[ "${#calls[@]}" -eq 6 ] || fail "expected 6 sbatch calls"
[[ ${calls[0]} == *"--array=0-6 "*"jobs/slurm/train.sbatch configs/experiments/sweeps/eps_dp-lora_k32_d16.toml configs/sweeps/eps.toml" ]] ||
  fail "eps training array: ${calls[0]}"
[[ ${calls[1]} == *"--array=0-6 "*"--dependency=aftercorr:5001 "*"jobs/slurm/eval.sbatch "* ]] || fail "eps eval array: ${calls[1]}"
[[ ${calls[2]} == *"--array=0-29 "*"train.sbatch --list configs/sweeps/table1.list" ]] || fail "table1 array: ${calls[2]}"
[[ ${calls[5]} == *"--dependency=afterok:5005 "* && ${calls[5]} != *--array* ]] || fail "single run eval: ${calls[5]}"
[ -d logs ] || fail "submit.sh did not create logs/"

# --- workstation: mpirun, resume after exit 75 (here: a wall-time stop at step 3), then eval ----
FAKE_STOP_AT=3 FAKE_STEPS=6 NP=2 bash jobs/local/run.sh configs/experiments/table1/flowers102_lora_d16.toml \
  --set "output.dir=$TMP/runs/local" > "$TMP/local.log" 2>&1 || { cat "$TMP/local.log"; fail "local run"; }
cat "$TMP/local.log"
grep -q "resuming, restart 1" "$TMP/local.log" || fail "local flow did not resume after exit 75"
[ -f "$TMP/runs/local/DONE" ] && [ -f "$TMP/runs/local/evaluated" ] || fail "local flow did not finish and evaluate"
grep -q "^mpirun -np 2 $VARDP_BIN train" "$FAKE_LOG" || fail "local flow did not use mpirun -np 2"
# A sweep on a workstation: two chosen points, one after the other.
INDICES="0 6" FAKE_STEPS=2 SKIP_EVAL=1 bash jobs/local/sweep.sh "${EPS[@]}" > "$TMP/lsweep.log" 2>&1 ||
  { cat "$TMP/lsweep.log"; fail "local sweep"; }
[ -f "$TMP/runs/eps/0000-target_epsilon=1.0/DONE" ] && [ -f "$TMP/runs/eps/0006-target_epsilon=1000.0/DONE" ] ||
  fail "local sweep did not run points 0 and 6"
# --- the real vardp through train.sbatch: SIGUSR1 -> checkpoint, exit 75 -> requeue -> resume -> DONE
export VARDP_BIN=$REAL_VARDP OMP_NUM_THREADS=1
"$PY" "$TESTS/python/make_train_dataset.py" "$TMP/tiny_train.h5" --n 16 --classes 4
REAL=("$TESTS/data/train_tiny.toml" --set "model.vae=$FIX/vae_fixture.pth" --set "model.var=$FIX/var_fixture.pth"
  --set "data.train=$TMP/tiny_train.h5" --set "output.dir=$TMP/runs/real" --set train.steps=12
  --set train.log_every=1 --set output.checkpoint_every=0)
: > "$FAKE_LOG"
export SLURM_JOB_ID=2001 SLURM_SUBMIT_DIR=$TMP/repo
bash jobs/slurm/train.sbatch "${REAL[@]}" > "$TMP/real.log" 2>&1 &
job=$!
for _ in $(seq 1 600); do grep -q "step 2/12" "$TMP/real.log" && break; sleep 0.1; done
kill -USR1 "$job"
rc=0
wait "$job" || rc=$?
[ "$rc" -eq 0 ] || { cat "$TMP/real.log"; fail "real run: batch script exited $rc"; }
grep -qx "scontrol requeue 2001" "$FAKE_LOG" || { cat "$TMP/real.log"; fail "real run: no requeue"; }
[ -f "$TMP/runs/real/latest" ] && [ ! -f "$TMP/runs/real/DONE" ] || fail "real run: no checkpoint, or finished"
SLURM_RESTART_COUNT=1 bash jobs/slurm/train.sbatch "${REAL[@]}" >> "$TMP/real.log" 2>&1 ||
  { cat "$TMP/real.log"; fail "real run: requeued job failed"; }
grep -q "resumed from .*/checkpoint-[0-9]*.h5 at step [1-9]" "$TMP/real.log" ||
  { cat "$TMP/real.log"; fail "real run: no resume"; }
[ -f "$TMP/runs/real/DONE" ] || fail "real run: not finished after the requeue"
srun "$VARDP_BIN" sample --run "$TMP/runs/real" --per-class 1 --batch 4 > "$TMP/real_sample.log" 2>&1 ||
  { cat "$TMP/real_sample.log"; fail "real run: sample"; }
[ -f "$TMP/runs/real/samples.h5" ] || fail "real run: no samples.h5"
unset SLURM_JOB_ID SLURM_SUBMIT_DIR
echo "requeue flow ok"
