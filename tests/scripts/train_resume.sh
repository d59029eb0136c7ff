#!/usr/bin/env bash
# Preemption (issue 5, acceptance 3; privacy issue, acceptance 1): a DP run stopped by SIGUSR1
# (exit 75 after a checkpoint) and resumed, and a run killed by SIGKILL between checkpoints and
# resumed, end with tensors identical to an uninterrupted run with the same run secret, and the
# privacy ledger counts every step exactly once. The SIGUSR1 run pins its secret (dp.secret_file);
# the SIGKILL run draws its own (secret.key), and its reference is an uninterrupted run pinned to
# that file afterwards: replayed steps reuse the run's own coins.
source "$(dirname "$0")/../support/script_lib.sh"
export OMP_NUM_THREADS=1
"$PY" "$TESTS/python/make_train_dataset.py" "$TMP/train.h5" --n 16 --classes 4
STEPS=16
"$PY" -c 'import secrets; print(secrets.token_hex(32))' > "$TMP/pinned.key"
command -v pkill > /dev/null || fail "pkill not found (Debian package procps; jobs/install-deps.sh installs it)"

cmd() {  # name [key file]
  echo "$VARDP_BIN" train ${2:+--set dp.secret_file=$2} --config "$TESTS/data/train_tiny.toml" --set "model.vae=$FIX/vae_fixture.pth" \
    --set "model.var=$FIX/var_fixture.pth" --set "data.train=$TMP/train.h5" --set "output.dir=$TMP/$1" \
    --set train.steps=$STEPS --set dp.enabled=true --set dp.noise_multiplier=0.8 --set dp.sample_rate=0.5 \
    --set output.checkpoint_every=2 --set train.log_every=1
}
wait_for_checkpoint() {  # dir, pid
  for _ in $(seq 1 600); do
    [ -e "$1/latest" ] && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# Uninterrupted reference.
mpirun_n 2 $(cmd ref "$TMP/pinned.key") > "$TMP/ref.log" 2>&1 || { cat "$TMP/ref.log"; fail "reference run"; }

# SIGUSR1 once the first checkpoint exists -> exit 75 -> resume.
# mpirun itself in the background (not a shell function), so that $! is mpirun: it forwards
# SIGUSR1 to the ranks as Slurm's --signal would deliver it.
mpirun -np 2 --oversubscribe $(cmd usr1 "$TMP/pinned.key") > "$TMP/usr1.log" 2>&1 &
pid=$!
wait_for_checkpoint "$TMP/usr1" $pid || { cat "$TMP/usr1.log"; fail "usr1: no checkpoint"; }
kill -USR1 $pid
set +e; wait $pid; rc=$?; set -e
[ $rc -eq 75 ] || { cat "$TMP/usr1.log"; fail "usr1: exit code $rc, expected 75"; }
grep -q "stop requested" "$TMP/usr1.log" || fail "usr1: no stop message"
[ ! -e "$TMP/usr1/DONE" ] || fail "usr1: DONE written by a stopped run"
mpirun_n 2 $(cmd usr1 "$TMP/pinned.key") --resume auto > "$TMP/usr1b.log" 2>&1 || { cat "$TMP/usr1b.log"; fail "usr1: resume"; }
grep -q "resumed from" "$TMP/usr1b.log" || fail "usr1: did not resume"

# SIGKILL after a checkpoint (between checkpoints) -> resume.
mpirun -np 2 --oversubscribe $(cmd kill) > "$TMP/kill.log" 2>&1 &
pid=$!
wait_for_checkpoint "$TMP/kill" $pid || { cat "$TMP/kill.log"; fail "kill: no checkpoint"; }
sleep 0.3
pkill -KILL -f "output.dir=$TMP/kill" || fail "kill: no rank process found to kill"
set +e; wait $pid; set -e
[ ! -e "$TMP/kill/DONE" ] || fail "kill: the run finished before it was killed; make it longer"
# Resuming with another config is refused (exit 2) and changes nothing.
set +e
mpirun_n 2 $(cmd kill) --set train.lr=0.5 > "$TMP/changed.log" 2>&1; rc=$?
set -e
[ $rc -eq 2 ] || { cat "$TMP/changed.log"; fail "changed config: exit code $rc, expected 2"; }
grep -q "refusing to resume" "$TMP/changed.log" || fail "changed config: no clear message"
mpirun_n 2 $(cmd kill) > "$TMP/killb.log" 2>&1 || { cat "$TMP/killb.log"; fail "kill: resume"; }
grep -q "resumed from" "$TMP/killb.log" || fail "kill: did not resume"
# The uninterrupted reference of the SIGKILL run: the same coins, through its own secret.key.
mpirun_n 2 $(cmd refkill "$TMP/kill/secret.key") > "$TMP/refkill.log" 2>&1 || { cat "$TMP/refkill.log"; fail "refkill"; }

"$PY" - "$TMP" $STEPS <<'PYEOF'
import sys, h5py, numpy as np
tmp, steps = sys.argv[1], int(sys.argv[2])
def load(name):
    run = f"{tmp}/{name}"
    latest = open(run + "/latest").read().strip()
    with h5py.File(f"{run}/{latest}", "r") as f:
        g = f["trainable"]
        t = {k: g[k][...] for k in g.attrs["keys"]}
        for moment, o in f["optimizer"].items():
            t.update({f"{moment}/{k}": o[k][...] for k in o.attrs["keys"]})
        ledger = (f["privacy/steps"][...].sum(), f["privacy"].attrs["total_steps"])
        return t, ledger, f.attrs["step"]
refs = {"usr1": load("ref"), "kill": load("refkill")}
for ref, ref_ledger, ref_step in refs.values():
    assert ref_step == steps and ref_ledger == (steps, steps), (ref_step, ref_ledger)
a, b = refs["usr1"][0], refs["kill"][0]
assert any(not np.array_equal(a[k], b[k]) for k in a), "runs with different secrets gave identical tensors"
for name in ("usr1", "kill"):
    ref = refs[name][0]
    t, ledger, step = load(name)
    assert step == steps, (name, step)
    assert ledger == (steps, steps), (name, ledger)
    for k in ref:
        assert np.array_equal(ref[k], t[k]), f"{name}: {k} differs from the uninterrupted run"
    print(f"{name}: identical to the uninterrupted run; ledger {ledger[0]} steps")
PYEOF
echo "train_resume OK"
