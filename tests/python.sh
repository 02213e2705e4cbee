#!/usr/bin/env bash
# The Python package as a user gets it: the wheel built with maturin (abi3), installed into a
# fresh virtual environment with pytest, pandas and openapi-spec-validator, then python/tests:
# the package against the ser-infer and ser-features binaries on the same files, and the
# service's /openapi.json through the validator. PROFILE picks the cargo profile of both (default
# test-release, which `make test-cargo` has built). WHEEL_DIR keeps the wheel (default: removed).
# With --bench: python/bench/predict.py instead of the tests (`make bench-python`, release profile).
set -euo pipefail
cd "$(dirname "$0")/.."
bench=0
if [ "${1:-}" = --bench ]; then bench=1; PROFILE=${PROFILE:-release}; fi
PROFILE=${PROFILE:-test-release}
W=$(mktemp -d "${TMPDIR:-/tmp}/ser-python-test.XXXXXX")
trap 'rm -rf "$W"' EXIT
WHEEL_DIR=${WHEEL_DIR:-$W/wheels}
pip_quiet=(--quiet --disable-pip-version-check)
if ! python3 -m maturin --version >/dev/null 2>&1; then
  echo "installing maturin (pip)"
  python3 -m pip install "${pip_quiet[@]}" 'maturin>=1.9.4,<2'
fi
cargo build --profile "$PROFILE" --quiet -p ser-infer -p ser-features -p ser-model --bins
python3 -m maturin build --quiet --profile "$PROFILE" --manifest-path python/Cargo.toml --out "$WHEEL_DIR"
wheel=$(ls "$WHEEL_DIR"/ser-*.whl)
python3 -m venv "$W/venv"
"$W/venv/bin/python" -m pip install "${pip_quiet[@]}" "$wheel" pytest pandas openapi-spec-validator
# Outside the repository, so `import ser` finds the installed wheel and nothing else.
cd "$W"
if [ $bench = 1 ]; then
  SER_BIN="$OLDPWD/target/$PROFILE" "$W/venv/bin/python" "$OLDPWD/python/bench/predict.py"
  exit
fi
echo "testing $(basename "$wheel") in a fresh venv"
SER_BIN="$OLDPWD/target/$PROFILE" \
  "$W/venv/bin/python" -m pytest -q -p no:cacheprovider "$OLDPWD/python/tests"
