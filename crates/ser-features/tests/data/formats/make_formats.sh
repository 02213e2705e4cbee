#!/usr/bin/env bash
# Writes the decoding fixtures of tests/it/audio.rs: half a second of a 440 Hz sine at 16 kHz,
# mono, amplitude 1/16 (the sine source's 1/8, halved), in every encoding ser-features decodes.
# The 16-bit WAV is the original; every other file is encoded from it, so the lossless ones hold
# its samples exactly. Run from this folder with ffmpeg (Debian's 5.1) installed: ./make_formats.sh
set -euo pipefail
ffmpeg -loglevel error -y -f lavfi -i "sine=frequency=440:sample_rate=16000:duration=0.5" -af "volume=0.5" -ac 1 \
    -c:a pcm_s16le -bitexact pcm_s16le.wav
ff() { ffmpeg -loglevel error -y -i pcm_s16le.wav -bitexact "$@"; }
ff -c:a pcm_u8 pcm_u8.wav
ff -c:a pcm_s24le pcm_s24le.wav
ff -c:a pcm_f64le pcm_f64le.wav
ff -c:a pcm_alaw alaw.wav
ff -c:a pcm_mulaw mulaw.wav
ff -c:a adpcm_ima_wav adpcm_ima.wav
# 24-bit stereo: ffmpeg writes WAVE_FORMAT_EXTENSIBLE (0xFFFE).
ff -ac 2 -c:a pcm_s24le extensible.wav
ff -c:a pcm_s16be tone.aiff
# AIFF behind a .wav name, as some public corpora ship it
ff -c:a pcm_s16be -f aiff aiff_named.wav
ff -c:a flac tone.flac
ff -c:a libmp3lame -b:a 32k tone.mp3
ff -c:a libvorbis -q:a 0 tone.ogg
ff -c:a aac -b:a 32k tone.m4a
ls -l
