#!/usr/bin/env bash
# Install agecast with its test tools and run lint, types and the test suite (CPU, offline).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q torch==2.13.0   # first: a looser pin would pull the multi-GB CUDA build
python3 -m pip install -q -e '.[cpu,test]'
python3 -m ruff check server tests
python3 -m ruff format --check server tests
python3 -m mypy
python3 -m pytest -q "$@"
