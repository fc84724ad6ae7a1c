#!/usr/bin/env bash
# Runs every check and test, from a fresh machine if need be: installs (scripts/install.sh) and
# Chromium for the browser tests (scripts/ensure-chromium.sh), then Rust (fmt, clippy, cargo
# test), Python (ruff, mypy, stubtest, pytest), the wheel in a clean venv, and, under CI or
# with CONTAINER=1, the container stage (scripts/container-smoke.sh).
#
# env: VENV (default .venv), CONTAINER (1 to force, 0 to skip the container stage)
set -euo pipefail
cd "$(dirname "$0")/.."
export VENV=${VENV:-.venv}

t0=$(date +%s)
stage() { echo; echo "=== [$(( $(date +%s) - t0 ))s] $*"; }

stage "install"
bash scripts/install.sh
VENV=$(cd "$VENV" && pwd)
export VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" PYO3_PYTHON="$VENV/bin/python"
if [ -d examples/plugin-example ]; then
  # The example third-party plugin: CI proves it is discovered through its entry point.
  uv pip install -q -e examples/plugin-example
fi

stage "services: PostgreSQL and Redis on 127.0.0.1 (the tests use both)"
bash scripts/ensure-services.sh

stage "browser: Debian's chromium for the console's tests (tests/console)"
bash scripts/ensure-chromium.sh

stage "rust: fmt, clippy, test"
cargo fmt --all --check
cargo clippy --all-targets --quiet -- -D warnings
cargo_log=$(mktemp)
cargo test --quiet 2>&1 | tee "$cargo_log"
cargo_passed=$(grep -Eo '[0-9]+ passed' "$cargo_log" | awk '{s+=$1} END {print s+0}')

stage "python: ruff, mypy, stubtest"
ruff check .
ruff format --check .
mypy
python -m mypy.stubtest agent_core._agent_core

stage "python: pytest"
pytest_log=$(mktemp)
pytest -q -p no:cacheprovider 2>&1 | tee "$pytest_log"
# The example plugin's own tests, as its authors would run them.
pytest -q -p no:cacheprovider examples/plugin-example/tests 2>&1 | tee -a "$pytest_log"
pytest_passed=$(grep -Eo '[0-9]+ passed' "$pytest_log" | awk '{s+=$1} END {print s+0}')
# The hostile-client suite's OpenAPI fuzzing prints its case counts (tests/api/test_hostile_*).
schemathesis_line=$(grep -E '^schemathesis: [0-9]+ cases' "$pytest_log" | tail -1 || true)

stage "wheel: build, install in a clean venv, import and run"
bash scripts/check-wheel.sh

# The container stage runs under CI (CI=true) unless CONTAINER=0; CONTAINER=1 forces it.
want_container=${CONTAINER:-}
if [ -z "$want_container" ]; then
  if [ "${CI:-}" = true ]; then want_container=1; else want_container=0; fi
fi
if [ "$want_container" = 1 ] && [ -f scripts/container-smoke.sh ]; then
  stage "container: build, run, smoke, two instances"
  bash scripts/container-smoke.sh
fi

stage "done in $(( $(date +%s) - t0 ))s"
echo "cargo test: ${cargo_passed} passed; pytest: ${pytest_passed} passed"
echo "${schemathesis_line:-schemathesis: no run found in the pytest output}"
echo "tests: $(( cargo_passed + pytest_passed )) passed, 0 failed"
