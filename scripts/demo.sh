#!/usr/bin/env bash
# Install agecast and start the live monitor on the embedded default: the bundled demo clip,
# the default identity, the bundled face detector, CPU when there is no GPU.
# Then open the sign-in URL it prints (http://127.0.0.1:8000/?token=…) in Chromium, Chrome or Edge.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q torch==2.13.0   # first: a looser pin would pull the multi-GB CUDA build
python3 -m pip install -q -e '.[cpu]'
exec agecast serve "$@"
