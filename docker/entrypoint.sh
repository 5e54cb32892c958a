#!/bin/sh
# Build the TensorRT plans that are missing (never on a live frame), then serve.
# Extra arguments go to `agecast serve` (e.g. --backend tensorrt --source rtsp://…).
set -eu
agecast backends
agecast engines build --all ${AGECAST_ENGINES_FP16:+--fp16}
exec agecast serve --host 0.0.0.0 --port "${AGECAST_PORT:-8000}" "$@"
