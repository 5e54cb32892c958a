#!/usr/bin/env bash
# Makes the locks: every direct and transitive dependency pinned with hashes (uv pip compile).
#   requirements/cpu.txt   pyproject.toml + extras cpu,test,ndi,triton + requirements/cpu.in (torch 2.13.0+cpu)
#                          for CPython 3.11 on Linux x86_64 (the development and CI machines)
#   requirements/gpu.txt   pyproject.toml + extras gpu,test,ndi,triton + requirements/gpu.in (torch 2.13.0, the
#                          PyPI CUDA build) for every platform and Python >= 3.11 (the Docker image)
#   requirements/tools.txt uv itself (requirements/tools.in)
#   requirements/triton-server.txt  the tritonserver wheel for the Triton tests, without its
#                          dependencies (requirements/triton-server.in)
#
#   bash scripts/lock.sh                  refresh after editing pyproject.toml or requirements/*.in:
#                                         keeps every pin that still fits, resolves only the rest
#   bash scripts/lock.sh --upgrade        move everything to the newest versions allowed
#   bash scripts/lock.sh --upgrade-package NAME [...]   move only those
#   bash scripts/lock.sh --check          fail, naming the packages, when the locks do not match
#                                         pyproject.toml and requirements/*.in (CI runs this)
#   bash scripts/lock.sh --upgrade --out DIR   write upgraded locks to DIR (scripts/test.sh --latest)
#
# torch's CPU wheel is looked for in AGECAST_TORCH_WHEELS, then in pip's own find-links
# directories, then on PyTorch's CPU index page; uv reads no pip configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/venv.sh
. scripts/lib/venv.sh

mode="write"
out=requirements
upgrade=()
while [ $# -gt 0 ]; do
  case "$1" in
    --check) mode=check ;;
    --upgrade) upgrade+=(--upgrade) ;;
    --upgrade-package)
      [ $# -ge 2 ] || agecast_die "--upgrade-package needs a package name"
      upgrade+=(--upgrade-package "$2")
      shift
      ;;
    --out)
      [ $# -ge 2 ] || agecast_die "--out needs a directory"
      out=$2
      shift
      ;;
    -h | --help)
      sed -n '2,19p' "$0"
      exit 0
      ;;
    *) agecast_die "unknown option '$1' (see: bash scripts/lock.sh --help)" ;;
  esac
  shift
done

# uv, from its own hashed lock, in a venv of its own (not the project's).
tools=.cache/lock-tools
agecast_make_venv "$tools"
if [ -f requirements/tools.txt ]; then
  agecast_install_tools() { "$tools/bin/python" -m pip install -q --require-hashes -r requirements/tools.txt; }
else # first bootstrap only: there is no tools lock yet
  agecast_install_tools() { "$tools/bin/python" -m pip install -q -r requirements/tools.in; }
fi
if [ ! -x "$tools/bin/uv" ] || ! cmp -s requirements/tools.txt "$tools/.tools.txt" 2>/dev/null; then
  agecast_install_tools || agecast_die "could not install uv into $tools"
  [ -f requirements/tools.txt ] && cp requirements/tools.txt "$tools/.tools.txt"
fi
uv=$tools/bin/uv

# Where torch's CPU wheel is: a local directory that has it, else PyTorch's CPU index page.
torch_links=""
for dir in ${AGECAST_TORCH_WHEELS:-} ${PIP_FIND_LINKS:-} \
  $("$tools/bin/python" -m pip config get global.find-links 2>/dev/null || true); do
  dir=${dir#file://}
  if compgen -G "$dir/torch-*+cpu-*.whl" >/dev/null; then
    torch_links=$dir
    break
  fi
done
torch_links=${torch_links:-$AGECAST_TORCH_CPU_INDEX/torch/}

compile() { # NAME OUTFILE
  local name=$1 target=$2 args
  case "$name" in
    cpu)
      args=(pyproject.toml requirements/cpu.in --extra cpu --extra test --extra ndi --extra triton
        --python-version 3.11 --python-platform x86_64-manylinux_2_28
        --find-links "$torch_links")
      ;;
    gpu) args=(pyproject.toml requirements/gpu.in --extra gpu --extra test --extra ndi --extra triton --universal
      --python-version 3.11) ;;
    tools) args=(requirements/tools.in --universal --python-version 3.11) ;;
    triton-server) args=(requirements/triton-server.in --no-deps --python-version 3.11
      --python-platform x86_64-manylinux_2_35) ;;
  esac
  "$uv" pip compile -q "${args[@]}" "${upgrade[@]}" --generate-hashes \
    --custom-compile-command "bash scripts/lock.sh" -o "$target"
}

if [ "$mode" = check ]; then
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  bad=0
  for name in cpu gpu tools triton-server; do
    lock=requirements/$name.txt
    [ -f "$lock" ] || agecast_die "$lock is missing: run 'bash scripts/lock.sh'"
    cp "$lock" "$scratch/$name.txt" # uv keeps the pins of the file it writes over
    compile "$name" "$scratch/$name.txt" ||
      agecast_die "resolving $lock failed (uv's message above; torch's CPU wheel was looked for in $torch_links)"
    if ! diff <(agecast_pins "$lock") <(agecast_pins "$scratch/$name.txt") >"$scratch/$name.diff"; then
      bad=1
      echo "agecast: $lock does not match pyproject.toml / requirements/$name.in:" >&2
      sed -n -E 's/^< /  locked, no longer wanted: /p; s/^> /  wanted, not locked:      /p' \
        "$scratch/$name.diff" >&2
    fi
  done
  [ "$bad" = 0 ] || agecast_die "the locks are stale: run 'bash scripts/lock.sh' and commit requirements/"
  agecast_log "locks match pyproject.toml and requirements/*.in"
  exit 0
fi

mkdir -p "$out"
for name in tools cpu gpu triton-server; do
  if [ "$out" != requirements ] && [ -f "requirements/$name.txt" ] && [ ${#upgrade[@]} = 0 ]; then
    cp "requirements/$name.txt" "$out/$name.txt"
  fi
  agecast_log "locking $out/$name.txt"
  compile "$name" "$out/$name.txt" ||
    agecast_die "resolving $out/$name.txt failed (uv's message above; torch's CPU wheel was looked for in $torch_links)"
done
