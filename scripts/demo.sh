#!/usr/bin/env bash
# Install agecast into the project's virtual environment (.venv, from the lock) and start the
# live monitor on the embedded default: the bundled demo clip, the default identity, the bundled
# face detector, CPU when there is no GPU. Then open the sign-in URL it prints
# (http://127.0.0.1:8000/?token=…) in Chromium, Chrome or Edge. Flags pass through to
# `agecast serve`. AGECAST_LOCK=gpu installs the GPU lock (requirements/gpu.txt) instead.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/venv.sh
. scripts/lib/venv.sh
agecast_make_venv .venv
agecast_install_lock .venv "$(agecast_lock_file)"
exec .venv/bin/agecast serve "$@"
