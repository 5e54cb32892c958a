#!/usr/bin/env bash
# Install agecast with its test tools into the project's virtual environment (.venv, from the
# lock) and run lint, types and the test suite (CPU, offline). Arguments pass through to pytest.
# Browser tests drive Debian's Chromium (/usr/bin/chromium); without it they skip and say so.
#
#   bash scripts/test.sh --latest   the same suite on the newest versions pyproject.toml allows,
#                                   in a scratch environment (.cache/venv-latest): shows, naming
#                                   the packages, what a lock refresh would change and whether
#                                   the suite still passes on it. The lock is not touched.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/venv.sh
. scripts/lib/venv.sh

latest=0
if [ "${1:-}" = --latest ]; then
  latest=1
  shift
fi

if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
fi

lock=$(agecast_lock_file)
venv=.venv
if [ "$latest" = 1 ]; then
  name=$(basename "$lock" .txt)
  bash scripts/lock.sh --upgrade --out .cache/latest
  changes=$(diff <(agecast_pins "$lock") <(agecast_pins ".cache/latest/$name.txt") |
    sed -n -E 's/^< /  - /p; s/^> /  + /p' || true)
  if [ -z "$changes" ]; then
    agecast_log "the newest versions allowed are the locked ones ($lock)"
  else
    agecast_log "a lock refresh would change ($lock → newest allowed):"
    printf '%s\n' "$changes" >&2
  fi
  lock=.cache/latest/$name.txt
  venv=.cache/venv-latest
  rm -rf "$venv"
  report_latest() {
    local rc=$?
    if [ "$rc" != 0 ] && [ -n "$changes" ]; then
      agecast_log "FAILED on the newest versions allowed by pyproject.toml; the packages that moved:"
      printf '%s\n' "$changes" >&2
      echo "Cap the culprit in pyproject.toml (and say why) before 'bash scripts/lock.sh --upgrade'." >&2
    elif [ "$rc" = 0 ]; then
      agecast_log "passed on the newest versions: 'bash scripts/lock.sh --upgrade' is safe to commit"
    fi
  }
  trap report_latest EXIT
fi

agecast_make_venv "$venv"
agecast_install_lock "$venv" "$lock"
agecast_install_triton_server "$venv"
agecast_fetch_samples "$venv"
py=$venv/bin/python
"$py" -m ruff check server tests bench
"$py" -m ruff format --check server tests bench
"$py" -m mypy
# the layers (pyproject.toml [tool.importlinter], ARCHITECTURE.md): no room imports one above it
"$venv/bin/lint-imports"
"$py" -m pytest -q "$@"
