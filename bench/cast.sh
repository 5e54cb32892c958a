#!/usr/bin/env bash
# The cast's live cost on this box: the cast:demo clip (two leads, a passer-by), 30 s each,
# baseline (no cast, the two largest faces aged with one identity) then the cast (two members,
# each their own age), in the same session.
set -euo pipefail
cd "$(dirname "$0")/.."; source .venv/bin/activate
S=work/cast-bench; rm -rf "$S"; mkdir -p "$S"
python -c "from pathlib import Path; from agecast.cast.scene import reference_photos; reference_photos(Path('$S/photos'))"
agecast --log-level warning cast add lead-a --photos "$S/photos/lead-a" --identity demo-aged --age 70 --state-dir "$S/state"
agecast --log-level warning cast add lead-b --photos "$S/photos/lead-b" --identity demo-aged --age 50 --state-dir "$S/state"
CLIP=$(python -c "from agecast.quality.clips import CAST_DEMO, clip_path, get_clip; print(clip_path(get_clip(CAST_DEMO)))")
common=(--live --seconds 30 --source "$CLIP" --identity demo-aged --state-dir "$S/state")
agecast --log-level warning bench "${common[@]}" --no-cast --faces all --max-faces 2 --json bench/results/cast-cpu-2core-baseline-2faces-live.json | tail -3
agecast --log-level warning bench "${common[@]}" --json bench/results/cast-cpu-2core-2members-live.json | tail -3
python - <<'PY'
import json
b=json.load(open("bench/results/cast-cpu-2core-baseline-2faces-live.json"))
c=json.load(open("bench/results/cast-cpu-2core-2members-live.json"))
for name,d in (("baseline",b),("cast",c)):
    print(name, {k:d.get(k) for k in ("fps_in","fps_out","seconds","ended_early")}, d["stages_ms"].get("recognise"), d["frame_to_output_ms"], d.get("cast"))
PY
