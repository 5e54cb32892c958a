#!/usr/bin/env bash
# Install agecast and render the embedded default: bundled demo clip → default identity, raw | aged.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q torch==2.13.0   # first: a looser pin would pull the multi-GB CUDA build
python3 -m pip install -q -e '.[cpu]'
agecast render --out out/demo.mp4 --report out/demo.json "$@"
