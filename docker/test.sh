#!/usr/bin/env bash
# The container, built and run as a facility would: builds the CPU image (making the Debian base
# image from Debian's packages when it is missing), starts it with compose, waits for health,
# signs in with the token from the log, checks /api/status and a WebSocket monitor, records a
# 3 s take into the takes volume, restarts the container, checks that the take and a sign-in link
# survive and that the take plays (PyAV), then stops and removes everything it started. Prints
# the image size and the time from `compose up` to the first picture.
#
#   bash docker/test.sh                 needs a Docker engine (docker info) and compose (v2 or v1)
#   bash docker/test.sh --json FILE     also write the figures to FILE (bench/results/…)
#
# BASE (default local/debian:bookworm, made here with debootstrap when missing) picks the base
# image. pip's own settings on this machine (index, find-links, CA bundle) are handed to the build:
# URLs as build arguments, a local wheel folder's torch wheel through docker/wheels/, the CA
# bundle as a build secret (never written into the image).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/venv.sh
. scripts/lib/venv.sh

json_out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --json)
      [ $# -ge 2 ] || agecast_die "--json needs a file"
      json_out=$2
      shift
      ;;
    -h | --help)
      sed -n '2,16p' "$0"
      exit 0
      ;;
    *) agecast_die "unknown option '$1' (see: bash docker/test.sh --help)" ;;
  esac
  shift
done

BASE=${BASE:-local/debian:bookworm}
IMAGE=agecast:cpu
PROJECT=agecast-dockertest
SERVICE=agecast-cpu

docker info >/dev/null 2>&1 || agecast_die "no Docker engine answers ('docker info' failed): start dockerd"

# A client that builds with BuildKit (the Dockerfile mounts a secret): buildx, or a pre-23 client
# whose own BuildKit does (a newer client without the buildx plugin refuses).
build=()
for client in $(type -ap docker); do
  if "$client" buildx version >/dev/null 2>&1; then
    build=("$client" buildx build --load)
    break
  fi
  major=$("$client" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)
  if [ -n "$major" ] && [ "$major" -lt 23 ] 2>/dev/null; then
    build=(env DOCKER_BUILDKIT=1 "$client" build)
    break
  fi
done
[ ${#build[@]} -gt 0 ] || agecast_die "no docker client here builds with BuildKit: install the buildx plugin"
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null; then
  compose=(docker-compose)
else
  agecast_die "no compose: install the docker compose plugin (or docker-compose)"
fi

# The host side (drive.py: httpx, websockets, PyAV) runs in the project's venv, from the lock.
agecast_make_venv .venv
agecast_install_lock .venv "$(agecast_lock_file)"
py=.venv/bin/python

# --- the base image --------------------------------------------------------------------------
make_debian_base() {
  local mirror rootfs
  command -v debootstrap >/dev/null || {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null ||
      agecast_die "$BASE is missing and debootstrap is not installed (apt-get install debootstrap)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  # the Debian mirror apt already uses (deb822 .sources, else sources.list)
  mirror=$(sed -n -E 's/^URIs:[[:space:]]*([^[:space:]]+).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -v -e security -e updates | head -n1 || true)
  [ -n "$mirror" ] || mirror=$(sed -n -E 's/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+bookworm[[:space:]].*/\2/p' \
    /etc/apt/sources.list 2>/dev/null | head -n1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  rootfs=$(mktemp -d /var/tmp/agecast-rootfs.XXXXXX)
  agecast_log "making $BASE: debootstrap --variant=minbase bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null ||
    agecast_die "debootstrap failed (its log: $rootfs/debootstrap/debootstrap.log)"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import - "$BASE" >/dev/null
  rm -rf "$rootfs"
}
base_made=false
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  case "$BASE" in
    local/debian:bookworm) make_debian_base && base_made=true ;;
    *) agecast_die "base image $BASE is not here (no registry is asked: load or build it first)" ;;
  esac
fi

# --- pip's sources, handed to the build ----------------------------------------------------
pip_get() { "$py" -m pip config get "global.$1" 2>/dev/null || true; }
build_args=(--build-arg "BASE=$BASE" --build-arg LOCK=cpu)
index=${PIP_INDEX_URL:-$(pip_get index-url)}
case "$index" in http*) build_args+=(--build-arg "INDEX_URL=$index") ;; esac
extra=()
find_links=()
for url in ${PIP_EXTRA_INDEX_URL:-$(pip_get extra-index-url)}; do
  case "$url" in http*) extra+=("$url") ;; esac # a file:// index on this machine is not reachable there
done
[ ${#extra[@]} -eq 0 ] || build_args+=(--build-arg "EXTRA_INDEX_URL=${extra[*]}")
torch_wheel=$(sed -n -E 's/^torch==([^ ]+).*/torch-\1-/p' requirements/cpu.txt | head -n1)
for link in ${PIP_FIND_LINKS:-} $(pip_get find-links); do
  case "$link" in
    http*) find_links+=("$link") ;;
    *)
      for wheel in "${link#file://}/$torch_wheel"*.whl; do
        [ -f "$wheel" ] || continue
        [ -f "docker/wheels/$(basename "$wheel")" ] ||
          ln "$wheel" docker/wheels/ 2>/dev/null || cp "$wheel" docker/wheels/
      done
      ;;
  esac
done
[ ${#find_links[@]} -eq 0 ] || build_args+=(--build-arg "FIND_LINKS=${find_links[*]}")
cert=${PIP_CERT:-$(pip_get cert)}
[ -z "$cert" ] || [ ! -f "$cert" ] || build_args+=(--secret "id=pip_cert,src=$cert")

agecast_log "building $IMAGE on $BASE"
build_at=$(date +%s)
"${build[@]}" -f docker/Dockerfile -t "$IMAGE" "${build_args[@]}" . ||
  agecast_die "the image build failed (see above)"
build_s=$(($(date +%s) - build_at))
image_bytes=$(docker image inspect -f '{{.Size}}' "$IMAGE")

# --- a wrong setting; a stop during start-up ---------------------------------------------------
set +e
bad=$(docker run --rm -e AGECAST_BLEND=7 "$IMAGE" 2>&1)
bad_rc=$?
set -e
if [ "$bad_rc" != 2 ] || [ "$(printf '%s\n' "$bad" | grep -c '^error: ')" != 1 ] ||
  ! printf '%s\n' "$bad" | grep -q '^error: .*blend must be at most 1'; then
  agecast_die "AGECAST_BLEND=7 should stop the container with one 'error:' line and exit 2; got $bad_rc: $bad"
fi
agecast_log "a wrong setting stops it with one line: $(printf '%s\n' "$bad" | grep '^error: ')"
# a UDP source with no sender holds the start-up at opening it: `docker stop` then
starting=$(docker run -d "$IMAGE" --source udp://127.0.0.1:5004)
for _ in $(seq 1 240); do
  docker logs "$starting" 2>&1 | grep -q 'built pipeline' && break
  sleep 0.25
done
stop_at=$("$py" -c 'import time; print(time.time())')
docker stop -t 30 "$starting" >/dev/null
startup_stop_s=$("$py" -c "import time; print(round(time.time() - $stop_at, 2))")
startup_rc=$(docker inspect -f '{{.State.ExitCode}}' "$starting")
startup_log=$(docker logs "$starting" 2>&1)
docker rm -v "$starting" >/dev/null
if [ "$startup_rc" != 0 ] || ! printf '%s\n' "$startup_log" | grep -q 'stopped during start-up'; then
  agecast_die "docker stop during start-up should end the server with exit code 0; got $startup_rc after ${startup_stop_s} s"
fi
agecast_log "docker stop during start-up: exit 0 after $startup_stop_s s"

# --- run it with compose ---------------------------------------------------------------------
work=$(mktemp -d)
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
mkdir -p "$work/identities"
export PORT=$port IDENTITIES_DIR=$work/identities CPU_BASE=$BASE
dc() { "${compose[@]}" -f docker/compose.yaml -p "$PROJECT" --profile cpu "$@"; }
cleanup() {
  local rc=$?
  if [ "$rc" != 0 ]; then
    agecast_log "FAILED; the container's log:"
    dc logs --no-color --tail 60 "$SERVICE" >&2 || true
  fi
  dc down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
dc down -v --remove-orphans >/dev/null 2>&1 || true

container() { # the service's container, running or stopped (for compose v1 and v2 alike)
  docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" \
    --filter "label=com.docker.compose.service=$SERVICE" | head -n1
}
# The sign-in URL the server prints once it has started (the newest in the log).
wait_for_token() {
  local line=""
  for _ in $(seq 1 240); do
    line=$(docker logs "$(container)" 2>/dev/null | grep -a 'agecast monitor: ' | tail -n1 || true)
    if [ -n "$line" ] && [ "$line" != "${1:-}" ]; then
      printf '%s\n' "$line"
      return 0
    fi
    [ "$(docker inspect -f '{{.State.Running}}' "$(container)")" = true ] ||
      agecast_die "the container stopped before printing its sign-in URL"
    sleep 0.25
  done
  agecast_die "no sign-in URL in the container's log after 60 s"
}
wait_healthy() {
  local state=""
  for _ in $(seq 1 120); do
    state=$(docker inspect -f '{{.State.Health.Status}}' "$(container)")
    [ "$state" = healthy ] && return 0
    sleep 1
  done
  agecast_die "the container is not healthy after 120 s (health: $state)"
}

agecast_log "compose up (port $port)"
up_at=$("$py" -c 'import time; print(time.time())')
dc up -d --no-build "$SERVICE" >/dev/null
line=$(wait_for_token)
token=${line##*token=}
first=$("$py" docker/drive.py first-picture "$url" "$token" --since "$up_at" --session "$work/session")
wait_healthy
healthy_s=$("$py" -c "import time; print(round(time.time() - $up_at, 2))")
agecast_log "first picture: $first"

# a link made the way the README says (compose exec), and whether its owner and files are right
viewer=$(dc exec -T "$SERVICE" agecast links create --role viewer --label dockertest --expires 1h | head -n1)
case "$viewer" in http*token=*) ;; *) agecast_die "'agecast links create' through compose exec printed: $viewer" ;; esac
owner=$(dc exec -T "$SERVICE" sh -c 'id -un; stat -c %U /state /takes /engines /cache' | sort -u | tr '\n' ' ')
[ "$owner" = "agecast " ] || agecast_die "the server and its volumes should all be the user agecast, not: $owner"

take=$("$py" docker/drive.py record "$url" --session "$work/session" --scene docker --take 1 --seconds 3)
agecast_log "recorded: $take"
take_id=$("$py" -c 'import json, sys; print(json.loads(sys.argv[1])["take"])' "$take")

# a second take is being recorded when `compose restart` sends SIGTERM: the server finishes it
"$py" docker/drive.py start "$url" --session "$work/session" --take 2 --seconds 2 >/dev/null
agecast_log "compose restart (SIGTERM while take docker_2 records)"
dc restart "$SERVICE" >/dev/null
line=$(wait_for_token "$line")
wait_healthy
survived=$("$py" docker/drive.py after-restart "$url" --session "$work/session" --take-id "$take_id" --viewer-link "$viewer")
agecast_log "after the restart: $survived; the session and the viewer link still sign in"
frames=$("$py" -c 'import json, sys; print(json.loads(sys.argv[1])["frames"])' "$survived")
plays() { # TAKE FILE FRAMES: the file copied out of the takes volume decodes to FRAMES frames
  docker cp "$(container):/takes/$1/$2" "$work/$1-$(basename "$2")"
  "$py" docker/drive.py plays "$work/$1-$(basename "$2")" --frames "$3" >/dev/null
}
plays "$take_id" raw.mp4 "$frames"
plays "$take_id" versions/v1/aged.mp4 "$frames"
agecast_log "take $take_id plays: raw.mp4 and aged.mp4, $frames frames each"
cut=$("$py" docker/drive.py take "$url" --session "$work/session" --take-id docker_2 --status "stopped: the monitor was shut down")
plays docker_2 raw.mp4 "$("$py" -c 'import json, sys; print(json.loads(sys.argv[1])["frames"])' "$cut")"
agecast_log "the take cut by SIGTERM was finished and plays: $cut"

# a third take, then the server is killed (no clean shutdown) and started again as PID 1: the
# dead recorder's .recorder.pid says 1, the new server's PID; the take must read "interrupted",
# not "recording" (claims are kernel locks, dropped at death, not PIDs)
"$py" docker/drive.py start "$url" --session "$work/session" --take 3 --seconds 2 >/dev/null
owner_pid=$(docker exec "$(container)" cat /takes/docker_3/.recorder.pid)
[ "$owner_pid" = 1 ] || agecast_die "the recorder should be PID 1 (the server), its lock file says: $owner_pid"
agecast_log "docker kill -s KILL while take docker_3 records (its recorder is PID 1), then start"
docker kill -s KILL "$(container)" >/dev/null
dc start "$SERVICE" >/dev/null
line=$(wait_for_token "$line")
wait_healthy
docker exec "$(container)" cat /proc/1/cmdline | tr '\0' ' ' | grep -q 'agecast serve' ||
  agecast_die "PID 1 in the container is not the server"
killed=$("$py" docker/drive.py take "$url" --session "$work/session" --take-id docker_3 --status interrupted)
agecast_log "the killed take reads interrupted under a new PID 1: $killed"

stop_start=$("$py" -c 'import time; print(time.time())')
dc stop "$SERVICE" >/dev/null
stop_s=$("$py" -c "import time; print(round(time.time() - $stop_start, 2))")
exit_code=$(docker inspect -f '{{.State.ExitCode}}' "$(container)")
[ "$exit_code" = 0 ] || agecast_die "the server exited with $exit_code on SIGTERM (docker stop), not 0"

result=$("$py" - "$first" "$image_bytes" "$healthy_s" "$stop_s" "$BASE" "$take" "$startup_stop_s" \
  "$build_s" "$base_made" "bash docker/test.sh${json_out:+ --json $json_out}" <<'EOF'
import json, os, platform, sys, time
first, size, healthy, stop, base, take, startup_stop, build, made, command = sys.argv[1:]
first = json.loads(first)
print(json.dumps({
    "command": command,
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "machine": f"{os.cpu_count()} cores, {platform.machine()}, shared (load {os.getloadavg()[0]:.1f})",
    "image": "agecast:cpu", "base": base, "base_made_now": made == "true",
    "lock": "requirements/cpu.txt", "build_s": int(build),
    "image_bytes": int(size), "image_gb": round(int(size) / 1e9, 2),
    "first_picture_s": first["first_picture_s"], "healthy_s": float(healthy),
    "backend": first["backend"], "fps_out": first["fps_out"],
    "take": json.loads(take), "stop_s": float(stop), "stop_during_startup_s": float(startup_stop),
}, indent=2))
EOF
)
printf '%s\n' "$result"
[ -z "$json_out" ] || printf '%s\n' "$result" >"$json_out"
printf 'image %s: %.2f GB; first picture %.1f s after compose up\n' "$IMAGE" \
  "$("$py" -c "print($image_bytes / 1e9)")" "$("$py" -c "import json, sys; print(json.loads(sys.argv[1])['first_picture_s'])" "$first")"
echo "docker/test.sh: 1 passed, 0 failed"
