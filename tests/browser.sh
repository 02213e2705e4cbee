#!/usr/bin/env bash
# The live page in a real browser: starts `ser-infer serve` with the model built into it (no
# --checkpoint), and runs tests/browser_check.py (headless Chromium through chromedriver, a fake microphone
# playing a generated recording). Installs Debian's chromium and chromium-driver, and selenium,
# when missing and it can (root, apt); otherwise SKIPPED, or FAILS under SER_REQUIRE_BROWSER.
# Screenshots land in artifacts/browser/.
# PROFILE picks the binaries (default test-release, which `make test-cargo` has built).
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-test-release}
PY=${SER_PYTHON:-python3}
BIN=target/$PROFILE
skip() {
    if [ -n "${SER_REQUIRE_BROWSER:-}" ]; then echo "FAIL $*"; exit 1; fi
    echo "SKIPPED: $*"
    exit 0
}
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing chromium and chromium-driver (apt)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
            || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; } \
            || skip "could not install chromium and chromium-driver"
    else
        skip "the browser test needs chromium and chromedriver (apt install chromium chromium-driver)"
    fi
fi
if ! "$PY" -c 'import selenium' 2>/dev/null; then
    "$PY" -m pip install --quiet --disable-pip-version-check selenium >/dev/null 2>&1 || skip "could not install selenium"
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/ser-browser-test.XXXXXX")
serve_pid=
cleanup() { [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
# The built-in model's files (the one folder under models/ with a model.json), for the
# `ser-infer stream --checkpoint` the page's answers are compared with.
CKPT=$(dirname models/*/model.json)
# The microphone's recording: three utterances of a synthetic speaker, 1.5 s of silence after
# the first and 6.5 s (more than a window and a hop: at least one silent window) after the second.
"$BIN/ser-features" synth --quiet --out "$W/voices" --speakers 8 --seed 7 >/dev/null
RAW=$W/voices/Actor_08
"$PY" - "$W/mic.wav" "$RAW/03-01-05-02-01-01-08.wav" "$RAW/03-01-03-02-01-01-08.wav" "$RAW/03-01-04-02-01-01-08.wav" <<'PY'
import sys, wave
out = wave.open(sys.argv[1], "wb")
for i, path in enumerate(sys.argv[2:]):
    clip = wave.open(path)
    if i == 0:
        out.setparams(clip.getparams())
    else:
        gap = [1.5, 6.5][i - 1]
        out.writeframes(b"\0" * clip.getsampwidth() * clip.getnchannels() * int(gap * clip.getframerate()))
    out.writeframes(clip.readframes(clip.getnframes()))
out.close()
PY
# Twice: an open server, then one that wants an API key, which the page asks for.
for key in "" "page-key-1b7e"; do
    env ${key:+SER_API_KEYS=$key} "$BIN/ser-infer" serve --addr 127.0.0.1:0 >"$W/serve.out" 2>"$W/serve.err" &
    serve_pid=$!
    for _ in $(seq 50); do grep -q '^http://' "$W/serve.out" && break; sleep 0.2; done
    URL=$(sed -n 1p "$W/serve.out")
    [ -n "$URL" ] || { cat "$W/serve.err"; echo "FAIL ser-infer serve did not start"; exit 1; }
    out=artifacts/browser${key:+/with-key}
    mkdir -p "$out"
    SER_TEST_KEY=$key "$PY" tests/browser_check.py "$URL" "$CKPT" "$BIN/ser-infer" "$W/mic.wav" "$RAW/03-01-06-02-01-01-08.wav" "$out" \
        || { tail -n 20 "$W/serve.err"; echo "FAIL the live page in Chromium${key:+ (with an API key)}"; exit 1; }
    curl -sf "$URL/healthz" >/dev/null 2>&1 || "$PY" -c "import urllib.request; urllib.request.urlopen('$URL/healthz')" \
        || { echo "FAIL /healthz after the browser test"; exit 1; }
    kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=
done
echo "tests/browser.sh: all passed"
