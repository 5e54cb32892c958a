#!/usr/bin/env bash
# Rebuilds the shipped demo identity (models/demo-aged, family agecast-reage) from the bundled
# demo clip: the exact commands that made the committed package. Footage faces → the same faces
# procedurally aged (server/agecast/training/synthetic_age.py) → a re-ageing U-Net that learns
# the change as a delta on the plate → export (ONNX, checked against torch through the runtime).
# CPU: 6000 steps or 60 min, then 3000 steps or 20 min hardening against occluders, then 3000
# steps or 25 min against hands (each stage reached its steps before its minutes when the
# committed package was made: 24, 8 and 21 min on a shared 2-core box; the manifest records all
# three commands). One torch thread: on a 2-core box that is as fast as two and does not spin
# against the rest of the machine.
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
# Third stage: hands. The shapes above are small flat props; a hand over the face is face-sized
# and skin, lit and creased like the face. Textured occluders (the face's own colour or any skin
# tone, uneven light, waves, grain, creases; hard or soft edges; up to face-sized) teach the mask
# to cut out what only looks like skin. The quality command's occluder clips (a hand drawn by
# server/agecast/quality/clips.py, not by this code) stay an unseen test.
agecast --log-level info train --family agecast-reage --src "$work/aged" --dst "$work/footage" \
  --out "$work/run-hands" --init-from "$work/run-occluders" --occluders 0.8 \
  --occluder-style textured --occluder-weight 12 --lr 5e-4 --resolution 256 --steps 3000 \
  --minutes 25 --batch 8 --seed 2 --threads 1 --device auto
agecast export "$work/run-hands" --out models/demo-aged --id demo-aged --purpose demo \
  --display-name "Demo: astronaut, re-aged (synthetic)" \
  --actor "NASA portrait of Eileen Collins (public domain, scikit-image 'astronaut')" \
  --target-age 75 \
  --source-footage "the bundled demo clip (agecast's 'demo' source, made from skimage.data.astronaut())" \
  --notes "Demonstration only, not a production likeness. The age target is synthetic: each demo-clip face was procedurally aged by 'agecast faceset age-synth' (greying hair, folds and lines, crepey skin, duller warmer skin, age spots) at nominal ages 38, 50, 62 and 75; the agecast-reage model learnt that change as a delta on the plate, with per-pixel age maps (local offsets for forehead, eyes, mouth and hair). It shows live re-ageing and the age controls; it does not predict how anyone ages."
