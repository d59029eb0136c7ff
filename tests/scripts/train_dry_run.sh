#!/usr/bin/env bash
# `vardp train --dry-run` builds VAR-d16/d20-shaped models (random weights when no checkpoint is
# at hand) and prints the trainable parameter counts of each adaptation (issue 5, acceptance 4).
source "$(dirname "$0")/../support/script_lib.sh"
export OMP_NUM_THREADS=1

count() {  # depth, expected adapter params, sets...
  local depth=$1 want=$2; shift 2
  local sets=(--set model.depth=$depth --set adapt.num_classes=102)
  for s in "$@"; do sets+=(--set "$s"); done
  "$VARDP_BIN" train --dry-run "${sets[@]}" > "$TMP/out.log" 2>&1 || { cat "$TMP/out.log"; fail "dry run failed"; }
  grep -q "adapter_params=$want " "$TMP/out.log" || { grep "dry run" "$TMP/out.log"; fail "d$depth $*: expected $want"; }
  grep -q "class_emb_params=$((103 * depth * 64)) " "$TMP/out.log" || fail "d$depth: class embedding count"
  echo "d$depth $*: $want OK"
}
count 16 6029312 adapt.method=lora
count 16 1572864 adapt.method=lora 'adapt.lora_targets=["attn"]'
count 16 2621440 adapt.method=lora 'adapt.lora_targets=["mlp"]'
count 16 100761600 adapt.method=lntune
count 20 196761600 adapt.method=lntune
echo "train_dry_run OK"
