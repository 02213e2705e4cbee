#!/usr/bin/env bash
# Writes the lossy fixtures of tests/it/cli.rs: the generated utterance the tests call
# clip(7, 5, 1) (`ser-features synth --seed 11`, actor 7, emotion 5, strong intensity), in MP3,
# Ogg Vorbis and AAC/M4A at 64 kbit/s. Run from this folder with ffmpeg (Debian's 5.1) installed
# and ser-features built:  ./make_lossy.sh ../../../../../target/test-release/ser-features
set -euo pipefail
ser_features=${1:?give the ser-features binary}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$ser_features" synth --out "$tmp" --speakers 8 --seed 11 -q >/dev/null
src="$tmp/Actor_07/03-01-05-02-01-01-07.wav"
ff() { ffmpeg -loglevel error -y -i "$src" -bitexact "$@"; }
ff -c:a libmp3lame -b:a 64k utterance.mp3
ff -c:a libvorbis -b:a 64k utterance.ogg
ff -c:a aac -b:a 64k utterance.m4a
ls -l
