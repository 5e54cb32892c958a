#!/bin/sh
# The container's start: build the missing TensorRT plans where TensorRT exists (never on a live
# frame), then become the server. Arguments after the image name (or compose's `command:`) go to
# `agecast serve`, e.g. --backend tensorrt --source rtsp://…
#
# A wrong setting (an unknown AGECAST_ variable, a bad value) stops the container with agecast's
# own one-line `error: …` and exit code 2, before anything else runs.
set -eu

if python -c 'import tensorrt' 2>/dev/null; then
  # plans already in the /engines volume are kept; ENGINES_FP16=1 builds half-precision ones
  if [ "${ENGINES_FP16:-0}" = 1 ]; then
    agecast engines build --all --fp16
  else
    agecast engines build --all
  fi
else
  echo "agecast-start: no TensorRT in this image: no plans to build" >&2
fi

# exec: the server is PID 1, so `docker stop` (SIGTERM) reaches it and it shuts down cleanly
# (a take being recorded is finished). A restarted container's server is PID 1 again, as the dead
# one was: takes are claimed with a lock the kernel drops at death, never judged by a PID.
exec agecast serve --host 0.0.0.0 "$@"
