#!/usr/bin/env bash
# Installs everything (scripts/install.sh) and starts the service on its embedded defaults:
# SQLite under ./data, in-memory rate limits, the offline `echo` provider always, OpenAI (the
# default provider) when OPENAI_API_KEY is set. Arguments go to `reasoning-agent serve`
# (--host, --port, --workers).
# The service needs at least one key in API_KEYS, e.g. `API_KEYS=key1,key2 bash scripts/run.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
export VENV=${VENV:-.venv}
bash scripts/install.sh
if [ -z "${OPENAI_API_KEY:-}" ] && [ -z "${REASONING_AGENT_DEFAULT_PROVIDER:-}" ]; then
  # A local trial without a key still answers: the offline provider becomes the default for
  # this run only. Deployments (Docker, compose, Kubernetes) keep openai and fail loudly.
  export REASONING_AGENT_DEFAULT_PROVIDER=echo
  echo "OPENAI_API_KEY is not set: this local run answers with the offline 'echo' provider" >&2
fi
exec "$VENV/bin/reasoning-agent" serve "$@"
