# shellcheck shell=bash
# Sourced by scripts/demo.sh, scripts/test.sh and scripts/lock.sh (not run on its own).
# The project's own virtual environment, installed from the lock; nothing ever goes into the
# system Python (a Debian/Ubuntu python3 is "externally managed", PEP 668, and refuses anyway).

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_USER=0

# The PyTorch index that serves torch's CPU build (PyPI's Linux x86_64 wheel is the CUDA build).
AGECAST_TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

agecast_die() {
  printf 'agecast: %s\n' "$*" >&2
  exit 1
}

agecast_log() {
  printf '==> %s\n' "$*" >&2
}

# The 'name==version ; markers' lines of a lock, sorted, without hashes.
agecast_pins() {
  grep -E '^[A-Za-z0-9._-]+==' "$1" | sed -E 's/[[:space:]]*\\$//' | sort
}

# Which lock this machine installs: requirements/cpu.txt, or gpu.txt with AGECAST_LOCK=gpu.
agecast_lock_file() {
  case "${AGECAST_LOCK:-cpu}" in
    cpu | gpu) printf 'requirements/%s.txt\n' "${AGECAST_LOCK:-cpu}" ;;
    *) agecast_die "AGECAST_LOCK must be 'cpu' or 'gpu' (got '${AGECAST_LOCK}')" ;;
  esac
}

# The Python that makes the venv: AGECAST_PYTHON, else the first python3 on PATH (>= 3.11).
agecast_base_python() {
  local py=${AGECAST_PYTHON:-python3}
  command -v "$py" >/dev/null ||
    agecast_die "no '$py' on PATH: install Python 3.11 or newer (Debian/Ubuntu: apt-get install python3 python3-venv)"
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    agecast_die "$("$py" -V 2>&1) is too old: agecast needs Python 3.11 or newer (set AGECAST_PYTHON to one)"
  printf '%s\n' "$py"
}

# Make the venv DIR with the base Python unless a working one is there. On Debian/Ubuntu the venv
# module's ensurepip comes in the python3-venv package: installed through apt when we are root,
# otherwise the message says what to install.
agecast_make_venv() {
  local dir=$1 py err
  if [ -x "$dir/bin/python" ] && "$dir/bin/python" -m pip --version >/dev/null 2>&1; then
    return 0
  fi
  py=$(agecast_base_python)
  rm -rf "$dir"
  agecast_log "creating the virtual environment $dir ($("$py" -V 2>&1))"
  if err=$("$py" -m venv "$dir" 2>&1); then
    return 0
  fi
  rm -rf "$dir"
  if ! "$py" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    local ver
    ver=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      agecast_log "Python's venv module is missing: installing python3-venv and python$ver-venv (apt)"
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      "$py" -c 'import ensurepip' >/dev/null 2>&1 ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python$ver-venv" >/dev/null ||
        agecast_die "apt could not install python$ver-venv for $py"
      "$py" -m venv "$dir" || agecast_die "'$py -m venv $dir' failed even with python3-venv installed"
      return 0
    fi
    agecast_die "Python's venv module is missing for $py. On Debian/Ubuntu install it with
  sudo apt-get install python3-venv        (or python$ver-venv for this python$ver)
then run this script again. Nothing is installed into the system Python."
  fi
  agecast_die "'$py -m venv $dir' failed:
$err"
}

# Install LOCK (a hashed requirements file made by scripts/lock.sh) into the venv DIR, then
# agecast itself (editable, no dependencies: they all came from the lock). Skipped when DIR was
# last installed from the same lock and pyproject.toml.
agecast_install_lock() {
  local dir=$1 lock=$2 stamp want pip
  [ -f "$lock" ] || agecast_die "no lock file $lock: run 'bash scripts/lock.sh' to make it"
  stamp="$dir/.agecast-lock"
  want=$(cat "$lock" pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  pip=("$dir/bin/python" -m pip)
  agecast_install_deps "$dir" "$lock"
  "${pip[@]}" install -qq --no-deps --no-build-isolation -e . ||
    agecast_die "installing agecast itself (editable) into $dir failed"
  agecast_pip_check "$dir" || agecast_die "the installed set in $dir is inconsistent (pip check)"
  printf '%s\n' "$want" >"$stamp"
}

# pip check on the venv DIR, except what nvidia-pytriton declares: it is installed without its
# dependencies on purpose (agecast_install_triton_server).
agecast_pip_check() {
  local out
  out=$("$1/bin/python" -m pip check 2>&1) && return 0
  out=$(printf '%s\n' "$out" | grep -v '^nvidia-pytriton ' || true)
  [ -z "$out" ] && return 0
  printf '%s\n' "$out" >&2
  return 1
}

# Every package of LOCK into the venv DIR, hash-checked (not agecast itself: the container
# image installs these in a layer of their own, before the project's code is copied in).
agecast_install_deps() {
  local dir=$1 lock=$2 torch_req pip first
  [ -f "$lock" ] || agecast_die "no lock file $lock: run 'bash scripts/lock.sh' to make it"
  pip=("$dir/bin/python" -m pip)
  agecast_log "installing $lock into $dir (hash-checked)"
  # torch first and on its own: its CPU build is not on PyPI. Pip takes it from a local wheel
  # directory it is set up with (find-links) or, failing that, from PyTorch's CPU index, which is
  # asked about torch alone (an index that cannot be reached costs retries per package).
  torch_req=$(mktemp)
  awk '/^torch==/ {p = 1} p {print; if ($0 !~ /\\$/) exit}' "$lock" >"$torch_req"
  if grep -q '^torch==.*+cpu' "$torch_req" &&
    ! first=$("${pip[@]}" install -q --require-hashes --no-deps -r "$torch_req" 2>&1); then
    agecast_log "torch's CPU build is not in pip's configured sources: trying $AGECAST_TORCH_CPU_INDEX"
    "${pip[@]}" install -q --require-hashes --no-deps --extra-index-url "$AGECAST_TORCH_CPU_INDEX" \
      -r "$torch_req" ||
      agecast_die "could not install torch's CPU build from $lock (pinned with hashes).
pip, from its configured sources, said:
$first
It comes from
  $AGECAST_TORCH_CPU_INDEX or a local wheel directory (pip --find-links). The lock covers
  CPython 3.11 on Linux x86_64; for another Python, refresh it with 'bash scripts/lock.sh' on a
  machine that reaches that index."
  fi
  rm -f "$torch_req"
  # -qq: errors only (a machine's pip configuration may add an index that warns per package)
  "${pip[@]}" install -qq --require-hashes -r "$lock" ||
    agecast_die "installing $lock failed (see pip's message above)"
}

# The tritonserver binary the Triton tests start (requirements/triton-server.txt: the
# nvidia-pytriton wheel, hash-checked, without its dependencies — see triton-server.in).
agecast_install_triton_server() {
  "$1/bin/python" -m pip install -qq --no-deps --require-hashes -r requirements/triton-server.txt ||
    agecast_die "installing requirements/triton-server.txt into $1 failed (see pip's message above)"
}

# The sample group photo the cast tests and bench use (requirements/samples.txt): the insightface
# wheel file, downloaded once (hash-checked) into .cache/samples, never installed.
agecast_fetch_samples() {
  local dir=.cache/samples
  if ls "$dir"/insightface-2.1-*.whl >/dev/null 2>&1; then
    return 0
  fi
  agecast_log "fetching the sample photos (requirements/samples.txt) into $dir"
  "$1/bin/python" -m pip download -qq --no-deps --require-hashes -r requirements/samples.txt \
    -d "$dir" ||
    agecast_die "could not fetch the sample photos (requirements/samples.txt) into $dir"
}
