#!/usr/bin/env bash
# The recipe of version 2.1 of the shipped model and its two leave-one-image-out folds (2.0's weights; 2.1
# changed only the cards' merge_threshold, 0.3 -> 0.1, which training writes from WatershedSettings' default
# and which does not touch the weights: the pseudo-labels come from the 1.3 teachers' own cards): each fine-tuned
# from its version 1.3 weights on its own annotated image(s), the five unannotated images pseudo-labelled
# by that same model (at their estimated scale), and generated junction images (textures continuous,
# punctate, frayed; spiked held out for scoring). About 6 minutes per model on a 2-core CPU; resumable
# (run it again after an interruption). Writes runs/variety/*.keras; copy them over models/ once scored.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=../shared/data/bbb
OUT=runs/variety
mkdir -p "$OUT"
STEPS=${STEPS:-1500}
common=(--steps "$STEPS" --learning-rate 5e-4 --patch 160 --batch 8 --seed 0 --version 2.1
        --pseudo-label "$DATA/unlabelled" --pseudo-share 0.5 --pseudo-keep 0.8
        --generated 200 --generated-share 0.25)
# The 1.3 weights and cards, from git (models/ now holds 2.1).
V13=runs/v13
mkdir -p "$V13/folds"
for f in bbb_unet folds/bbb_unet_train01 folds/bbb_unet_train02; do
  for ext in .keras .card.json .onnx; do
    [ -f "$V13/$f$ext" ] || git show "d75a92d:models/$f$ext" > "$V13/$f$ext"
  done
done
train() {  # name, start-from model, image stems...
  local name=$1 start=$2; shift 2
  [ -f "$OUT/$name.keras" ] && { echo "$OUT/$name.keras exists"; return; }
  .venv/bin/python -m bbbcore train "$DATA/train" --images "$@" --name "$name" --out "$OUT/$name.keras" \
    --start-from "$start" --teacher "$start" --checkpoint-dir "$OUT/$name.ckpt" "${common[@]}"
}
train bbb_unet_train01 "$V13/folds/bbb_unet_train01.keras" bbb_01
train bbb_unet_train02 "$V13/folds/bbb_unet_train02.keras" bbb_02
train bbb_unet "$V13/bbb_unet.keras" bbb_01 bbb_02
