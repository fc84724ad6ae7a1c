#!/usr/bin/env bash
# Builds the wheel and proves it is complete: installs it (with the locked dependencies) into a
# brand-new venv outside the source tree, imports every package and runs every strategy through
# a Python Provider subclass. `maturin develop` would hide a wheel that lacks files.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! "$VENV/bin/maturin" build --release --out "$work/dist" >"$work/build.log" 2>&1; then
  cat "$work/build.log" >&2; exit 1
fi
wheel=$(ls "$work"/dist/*.whl)
echo "wheel: $(basename "$wheel") ($(du -h "$wheel" | cut -f1))"
python3 -m venv "$work/venv"
"$VENV/bin/uv" pip install -q --python "$work/venv/bin/python" -c requirements/lock.txt "$wheel"
cp examples/wheel_smoke.py "$work/"
cd "$work"  # away from the source tree, so only the installed wheel can be imported
"$work/venv/bin/python" wheel_smoke.py
