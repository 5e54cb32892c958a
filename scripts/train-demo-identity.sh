#!/usr/bin/env bash
# Rebuilds the shipped demo identity (models/demo-aged, family agecast-reage) from the bundled
# demo clip: the exact commands that made the committed package. Footage faces → the same faces
# procedurally aged (server/agecast/training/synthetic_age.py) → a re-ageing U-Net that learns
# the change as a delta on the plate → export (ONNX, checked against torch through the runtime).
# CPU: 6000 steps or 60 min, then 3000 steps or 20 min hardening against occluders (the manifest
# records the second). One torch thread:
# on a 2-core box that is as fast as two and does not spin against the rest of the machine.
set -euo pipefail
work=${1:-work/demo-identity}
mkdir -p "$work"
agecast faceset extract --source demo --out "$work/footage" --size 256
agecast faceset age-synth --footage "$work/footage" --out "$work/aged" --base-age 38 \
  --ages 38,50,62,75
agecast --log-level info train --family agecast-reage --src "$work/aged" --dst "$work/footage" \
  --out "$work/run" --resolution 256 --steps 6000 --minutes 60 --batch 8 --seed 0 \
  --threads 1 --device auto
# Second stage: the same net, hardened against what crosses a face (hands, cups, hair): eight
# samples in ten carry an occluder. The first stage learns the ageing; this one, to leave alone.
agecast --log-level info train --family agecast-reage --src "$work/aged" --dst "$work/footage" \
  --out "$work/run-occluders" --init-from "$work/run" --occluders 0.8 --occluder-weight 12 --lr 5e-4 \
  --resolution 256 --steps 3000 --minutes 20 --batch 8 --seed 1 --threads 1 --device auto
agecast export "$work/run-occluders" --out models/demo-aged --id demo-aged --purpose demo \
  --display-name "Demo: astronaut, re-aged (synthetic)" \
  --actor "NASA portrait of Eileen Collins (public domain, scikit-image 'astronaut')" \
  --target-age 75 \
  --source-footage "the bundled demo clip (agecast's 'demo' source, made from skimage.data.astronaut())" \
  --notes "Demonstration only, not a production likeness. The age target is synthetic: each demo-clip face was procedurally aged by 'agecast faceset age-synth' (greying hair, folds and lines, crepey skin, duller warmer skin, age spots) at nominal ages 38, 50, 62 and 75; the agecast-reage model learnt that change as a delta on the plate, with per-pixel age maps (local offsets for forehead, eyes, mouth and hair). It shows live re-ageing and the age controls; it does not predict how anyone ages."
