#!/usr/bin/env bash
# Rebuilds the shipped demo identity (models/demo-aged) from the bundled demo clip: the exact
# commands that made the committed package. Footage faces → a synthetic age target (procedural
# ageing, see server/agecast/training/synthetic_age.py) → train → export. CPU: 32 min or 3000 steps, whichever comes first (the manifest records which).
set -euo pipefail
work=${1:-work/demo-identity}
mkdir -p "$work"
agecast faceset extract --source demo --out "$work/footage" --size 256
agecast faceset age-synth --footage "$work/footage" --out "$work/aged" --base-age 38 \
  --ages 38,50,62,75
agecast --log-level info train --src "$work/aged" --dst "$work/footage" --out "$work/run" --resolution 128 \
  --steps 3000 --minutes 32 --batch 8 --seed 0 --device auto
agecast export "$work/run" --out models/demo-aged --id demo-aged --purpose demo \
  --display-name "Demo: astronaut, aged (synthetic)" \
  --actor "NASA portrait of Eileen Collins (public domain, scikit-image 'astronaut')" \
  --target-age 75 --color-transfer none \
  --source-footage "the bundled demo clip (agecast's 'demo' source, made from skimage.data.astronaut())" \
  --notes "Demonstration only, not a production likeness. The age target is synthetic: each demo-clip face was procedurally aged by 'agecast faceset age-synth' (greyed hair and brows, drawn lines, duller warmer skin, age spots) at nominal ages 38, 50, 62 and 75; the model learnt that transform with a continuous age input. It shows live ageing and the age control; it does not predict how anyone ages."
