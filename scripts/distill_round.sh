#!/bin/bash
# Distil relic-tiny's student from a committed teacher, end to end and resumable (docs/training.md, "Round 13").
#
#   scripts/distill_round.sh SUFFIX [WORK]
#
# SUFFIX names the round's configs: configs/tiny/{ode_pairs,ode_init,dmd}_SUFFIX.yaml (e.g. r10b). WORK (default
# ~/relic-work) holds the datasets and runs outside the work tree; data/ and runs/ here are links to it. Each step
# is skipped when its output is complete, so a killed run is continued by running the same command again:
#   1. data: the round-6 render (1,200 clips x 20 s, seed 0) and the roll supplement (400 clips, seed 7), filtered
#      and encoded with weights/stages/vae_pooled (about 60 min on the 2-core CPU; the render is deterministic
#      per seed, so a re-render is the same dataset);
#   2. ODE pairs, two processes x one thread (RANK/WORLD_SIZE: each writes every other pair; about 7 min);
#   3. ODE init (about 13 min), 4. DMD (about 40 min), each resumed from its latest checkpoint;
#   5. the candidate model directory WORK/candidates/SUFFIX (bf16) and the full `relic eval` against the
#      dmd config's teacher into WORK/eval/SUFFIX_full (about 20 min).
# Logs go to WORK/logs/. The candidate is not shipped: weights/relic-tiny changes only by hand, after the
# report beats the shipped model (docs/model-card.md).
set -euo pipefail
SUFFIX=${1:?usage: scripts/distill_round.sh SUFFIX [WORK]}
WORK=${2:-$HOME/relic-work}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
for f in ode_pairs ode_init dmd; do
  [ -f "configs/tiny/${f}_${SUFFIX}.yaml" ] || { echo "distill_round: configs/tiny/${f}_${SUFFIX}.yaml not found" >&2; exit 2; }
done
# shellcheck disable=SC1091
source .venv/bin/activate
mkdir -p "$WORK/data" "$WORK/runs" "$WORK/logs" "$WORK/candidates" "$WORK/eval"
for d in data runs; do
  if [ -e "$d" ] && [ ! -L "$d" ]; then echo "distill_round: ./$d exists and is not a link to $WORK/$d" >&2; exit 2; fi
  ln -sfn "$WORK/$d" "$d"
done
log() { echo "$(date -u +%FT%TZ) $*"; }
yaml_get() { python -c "import sys, yaml; c = yaml.safe_load(open(sys.argv[1])); print(c[sys.argv[2]])" "$@"; }

count() { find "$1" -maxdepth 1 -name "$2" 2>/dev/null | wc -l; }
encode() {  # DIR OUT: encode every clip of DIR (skips the encoded ones)
  relic data encode "$1" --vae weights/stages/vae_pooled --out "$2" --dtype bfloat16 --precision bf16
}
if [ "$(count data/latents_r6 'clip_*.safetensors')" -lt 1200 ] || [ "$(count data/latents_roll 'clip_*.safetensors')" -lt 400 ]; then
  log "data: render, filter, encode (logs/data_*.log)"
  relic world render --out data/clips_r6 --clips 1200 --seconds 20 --size 224x128 --seed 0 --workers 2 > "$WORK/logs/data_render.log" 2>&1
  ( relic data filter data/clips_r6 --report data/filter_r6.md --json data/filter_r6.json > /dev/null
    OMP_NUM_THREADS=1 encode data/clips_r6 data/latents_r6 ) > "$WORK/logs/data_r6.log" 2>&1 &
  r6=$!
  ( relic world render --out data/clips_roll --clips 400 --seconds 20 --size 224x128 --seed 7 --operator-preset roll --workers 1
    relic data filter data/clips_roll --report data/filter_roll.md --json data/filter_roll.json > /dev/null
    OMP_NUM_THREADS=1 encode data/clips_roll data/latents_roll ) > "$WORK/logs/data_roll.log" 2>&1 &
  roll=$!
  wait $roll
  wait $r6
fi

pairs=$(yaml_get "configs/tiny/ode_pairs_${SUFFIX}.yaml" out)
want=$(yaml_get "configs/tiny/ode_pairs_${SUFFIX}.yaml" num_samples)
if [ "$(count "$pairs" 'pair_*.safetensors')" -lt "$want" ]; then
  log "ODE pairs -> $pairs"
  for rank in 0 1; do
    RANK=$rank WORLD_SIZE=2 OMP_NUM_THREADS=1 relic train ode-pairs --config "configs/tiny/ode_pairs_${SUFFIX}.yaml" \
      > "$WORK/logs/ode_pairs_${SUFFIX}_$rank.log" 2>&1 &
  done
  wait
  got=$(count "$pairs" 'pair_*.safetensors')
  [ "$got" -ge "$want" ] || { echo "distill_round: ODE pairs made $got of $want (see $WORK/logs/ode_pairs_${SUFFIX}_*.log)" >&2; exit 1; }
fi

for stage in ode_init dmd; do
  out=$(yaml_get "configs/tiny/${stage}_${SUFFIX}.yaml" out)
  if [ ! -f "$out/final/config.json" ]; then
    resume=""; [ -d "$out/checkpoints" ] && resume=--resume
    log "$stage -> $out $resume"
    OMP_NUM_THREADS=2 relic train "${stage/_/-}" --config "configs/tiny/${stage}_${SUFFIX}.yaml" $resume \
      > "$WORK/logs/${stage}_${SUFFIX}.log" 2>&1
  fi
done

dmd_out=$(yaml_get "configs/tiny/dmd_${SUFFIX}.yaml" out)
teacher=$(yaml_get "configs/tiny/dmd_${SUFFIX}.yaml" teacher)
cand="$WORK/candidates/$SUFFIX"
log "package -> $cand"
relic train package --dit "$dmd_out/final" --vae weights/stages/vae_pooled \
  --tiny-decoder weights/stages/tiny_decoder_pooled --out "$cand" > "$WORK/logs/package_${SUFFIX}.log" 2>&1
if [ ! -f "$WORK/eval/${SUFFIX}_full/report.md" ]; then
  log "relic eval -> $WORK/eval/${SUFFIX}_full"
  OMP_NUM_THREADS=2 relic eval --model "$cand" --label "$SUFFIX" --teacher "$teacher" --teacher-sampler renoise \
    --teacher-steps 4 --teacher-guidance 1 --teacher-shift 2 --teacher-guide all --suite all --gaps 5,10,20 \
    --out "$WORK/eval/${SUFFIX}_full" > "$WORK/logs/eval_${SUFFIX}.log" 2>&1
fi
log "done: compare $WORK/eval/${SUFFIX}_full/report.md with docs/eval/relic-tiny/report.md"
