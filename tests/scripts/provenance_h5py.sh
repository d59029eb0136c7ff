#!/usr/bin/env bash
# A file written by the HDF5 layer under mpirun opens in h5py with every provenance attribute.
source "$(dirname "$0")/../support/script_lib.sh"
SLURM_JOB_ID=4242 SLURM_ARRAY_TASK_ID=3 mpirun -np 2 --oversubscribe -x SLURM_JOB_ID -x SLURM_ARRAY_TASK_ID \
  "$VARDP_BIN" selftest --out "$TMP/selftest.h5" --set train.seed=5
"$PY" "$(dirname "$0")/../python/check_provenance.py" "$TMP/selftest.h5" vardp.selftest 2
