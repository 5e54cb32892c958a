#!/usr/bin/env bash
# Install agecast with its test tools and run lint, types and the test suite (CPU, offline).
# Browser tests drive Debian's Chromium (/usr/bin/chromium); without it they skip and say so.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
fi
python3 -m pip install -q torch==2.13.0   # first: a looser pin would pull the multi-GB CUDA build
python3 -m pip install -q -e '.[cpu,test]'
python3 -m ruff check server tests bench
python3 -m ruff format --check server tests bench
python3 -m mypy
python3 -m pytest -q "$@"
