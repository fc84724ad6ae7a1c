#!/usr/bin/env bash
# Installs everything (scripts/install.sh) and starts the service on its embedded defaults:
# SQLite under ./data, in-memory rate limits, the offline `echo` provider always, OpenAI when
# OPENAI_API_KEY is set. Arguments go to `reasoning-agent serve` (--host, --port, --workers).
# The service needs at least one key in API_KEYS, e.g. `API_KEYS=key1,key2 bash scripts/run.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
export VENV=${VENV:-.venv}
bash scripts/install.sh
exec "$VENV/bin/reasoning-agent" serve "$@"
