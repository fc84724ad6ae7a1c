#!/usr/bin/env bash
# Installs everything the project needs into a virtualenv, from the lock file:
# the Python dependencies, then agent_core (Rust, built by maturin) and the providers/api
# packages as an editable install. Idempotent: a second run only rebuilds what changed.
#
# env: VENV (default .venv), PYTHON (default python3), PROFILE (release|dev, default release)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
PROFILE=${PROFILE:-release}
UV_VERSION=0.13.9

log() { echo "[install] $*" >&2; }

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "ReasoningAgent needs Python 3.11 or newer ($PYTHON is older)" >&2; exit 1; }
command -v cargo >/dev/null || { echo "cargo (Rust) is needed to build agent_core" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/uv" --version 2>/dev/null | grep -q "$UV_VERSION"; then
  log "installing uv $UV_VERSION"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
fi
VENV=$(cd "$VENV" && pwd)
export VIRTUAL_ENV="$VENV"

log "installing locked dependencies (requirements/lock.txt)"
"$VENV/bin/uv" pip install -q -r requirements/lock.txt

log "building agent_core ($PROFILE) and installing the project (editable)"
flags=(--uv)
[ "$PROFILE" = release ] && flags+=(--release)
build_log=$(mktemp)
# The dependencies are already satisfied from the lock, so this installs only the project.
if ! "$VENV/bin/maturin" develop "${flags[@]}" >"$build_log" 2>&1; then
  cat "$build_log" >&2; rm -f "$build_log"; exit 1
fi
rm -f "$build_log"
"$VENV/bin/python" -c 'import agent_core' \
  || { echo "agent_core did not build or install; see the messages above" >&2; exit 1; }
log "ready: $VENV"
