#!/usr/bin/env bash
# The scale-out test on a real Slurm scheduler: a private single-node cluster
# (scripts/slurm-cluster, installed with apt-get when missing) runs the demo pipeline's feature
# extraction and search, and an ensemble's trainings, as array jobs through the Makefile
# (SCHEDULER=slurm), and the outputs must equal a single-machine run. Then the launcher's failure handling: a failing task
# makes the stage fail with that task's log, and a re-run submits only the failed shard.
# Where Slurm cannot be installed or started, the test says SKIPPED and why (SER_REQUIRE_SLURM=1
# turns that into a failure). PROFILE picks the binaries (default test-release).
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-test-release}
SHARDS=${SHARDS:-3}
W=$(mktemp -d "${TMPDIR:-/tmp}/ser-slurm-test.XXXXXX")
chmod 755 "$W" # munged runs as the munge user and needs to reach its socket folder inside
export SER_SLURM_DIR=$W/cluster
export SER_SLURM_PORT=${SER_SLURM_PORT:-$((7000 + RANDOM % 2000 * 2))}
export SLURM_WAIT_TIMEOUT_S=${SLURM_WAIT_TIMEOUT_S:-900} # never hang CI on a stuck queue
failures=0
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
skip() {
    echo "SKIPPED: tests/slurm.sh: $*"
    if [ -n "${SER_REQUIRE_SLURM:-}" ]; then echo "SER_REQUIRE_SLURM is set: failing"; exit 1; fi
    exit 0
}
cleanup() {
    scripts/slurm-cluster stop >/dev/null 2>&1 || true
    rm -rf "$W"
}
trap cleanup EXIT

echo "== a local Slurm cluster"
why=$(scripts/slurm-cluster check) || skip "$why"
scripts/slurm-cluster install >"$W/install.log" 2>&1 || { cat "$W/install.log"; skip "Slurm could not be installed (see above)"; }
scripts/slurm-cluster start >"$W/start.log" 2>&1 || {
    cat "$W/start.log"
    for f in "$SER_SLURM_DIR"/log/*.log "$SER_SLURM_DIR"/munge/munged.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }; done
    skip "the Slurm daemons did not start (see above)"
}
eval "$(scripts/slurm-cluster env)"
pass "$(tail -n1 "$W/start.log" | sed 's/^slurm-cluster: //')"

# The demo pipeline with a short search: 6 trials of 2 epochs. And an ensemble of it with two
# folds, two seeds and another pipeline's models, of 2 epochs each: six trainings.
mkdir -p "$W/pipelines"
cp pipelines/demo.yaml "$W/pipelines/demo-full.yaml"
printf 'extends: demo-full\ntune: {trials: 6, fixed: {max_epochs: 2, patience: 2}}\n' >"$W/pipelines/demo.yaml"
printf 'extends: demo\nsplit: !replace {kind: speaker_kfold, k: 2, val_speakers: 1, seed: 3}\nmodel: {max_epochs: 2}\n' \
    >"$W/pipelines/folds.yaml"
printf 'extends: folds\nensemble: {seeds: [1, 2], pipelines: [folds]}\n' >"$W/pipelines/folds-ens.yaml"
mk() { # mk <where> args...
    local where=$1
    shift
    make -s --no-print-directory PROFILE="$PROFILE" PIPELINES="$W/pipelines" DATA="$W/$where/data" \
        ARTIFACTS="$W/$where/artifacts" P=demo "$@"
}
# The binaries and the synthetic corpus first, so the timings below are of the stages alone.
mk local "target/$PROFILE/ser-features" "target/$PROFILE/ser-tune" >/dev/null 2>&1
mk local "$W/local/data/raw/demo/.done" >/dev/null 2>&1
mk slurm "$W/slurm/data/raw/demo/.done" >/dev/null 2>&1

echo "== features and search: one machine vs $SHARDS-task Slurm arrays"
t0=$(date +%s.%N)
mk local features tune >"$W/local.log" 2>&1 || { tail -n 30 "$W/local.log"; fail "single-machine features + tune"; exit 1; }
t1=$(date +%s.%N)
mk slurm features tune SCHEDULER=slurm SHARDS="$SHARDS" >"$W/slurm.log" 2>&1 || { cat "$W/slurm.log"; fail "Slurm features + tune"; exit 1; }
t2=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v n="$SHARDS" \
    'BEGIN { printf "wall time: one machine %.1f s, Slurm %d shards %.1f s (features + search of 6 trials)\n", b - a, n, c - b }'
grep "done in" "$W/slurm.log" | sed "s/^/     /"
grep -q "submitted array job" "$W/slurm.log" && pass "features and tune ran as Slurm array jobs" \
    || fail "no array job was submitted: $(cat "$W/slurm.log")"
L=$W/local/data/features/demo S=$W/slurm/data/features/demo
n_parts=$(find "$S/parts" -name "part-*-of-$SHARDS.parquet" | wc -l)
[ "$n_parts" = "$SHARDS" ] && pass "$SHARDS feature part files" || fail "$n_parts part files, expected $SHARDS"
cmp -s "$L/features.parquet" "$S/features.parquet" && pass "merged feature table byte-identical to the single-machine one" \
    || fail "merged feature table differs from the single-machine one"
cmp -s "$L/features.rejects.csv" "$S/features.rejects.csv" && pass "rejects tables identical" || fail "rejects tables differ"
LT=$W/local/artifacts/demo/tune ST=$W/slurm/artifacts/demo/tune
cmp -s "$LT/best.yaml" "$ST/best.yaml" && pass "best.yaml identical" || fail "best.yaml differs"
# trials.csv: every column but the wall-clock seconds must match.
strip_seconds() { python3 -c 'import csv,sys
rows=list(csv.reader(open(sys.argv[1])))
i=rows[0].index("seconds")
for r in rows: print(",".join(c for j,c in enumerate(r) if j!=i))' "$1"; }
if [ "$(strip_seconds "$LT/trials.csv")" = "$(strip_seconds "$ST/trials.csv")" ] && [ "$(wc -l <"$ST/trials.csv")" = 7 ]; then
    pass "trials.csv identical but for wall seconds (6 trials)"
else
    fail "trials.csv differs:"; diff <(strip_seconds "$LT/trials.csv") <(strip_seconds "$ST/trials.csv") || true
fi
mk slurm -q features tune SCHEDULER=slurm SHARDS="$SHARDS" && pass "make -q: the Slurm-made outputs are up to date" \
    || { fail "make considers the Slurm-made outputs out of date; make -n would run:"
        mk slurm -n features tune SCHEDULER=slurm SHARDS="$SHARDS" 2>&1 | head -n 20; }

echo "== trainings: one machine vs one Slurm array"
mk local P=folds-ens train >"$W/local-train.log" 2>&1 || { tail -n 30 "$W/local-train.log"; fail "single-machine training"; }
mk slurm P=folds-ens train SCHEDULER=slurm >"$W/slurm-train.log" 2>&1 || { cat "$W/slurm-train.log"; fail "Slurm training"; }
grep -q "slurm-array\[train-folds-ens\]: submitted array job .*: shards 0,1,2,3,4,5 of 6" "$W/slurm-train.log" \
    && pass "the two folds' seed members and the other pipeline's fold models trained as one array of 6" \
    || fail "no array of 6 trainings: $(grep slurm-array "$W/slurm-train.log")"
same=0
for f in 0 1; do
    for m in folds-ens/folds/$f/model folds-ens/folds/$f/members/seed-1 folds-ens/folds/$f/members/seed-2 folds/folds/$f/model; do
        cmp -s "$W/local/artifacts/$m/model.safetensors" "$W/slurm/artifacts/$m/model.safetensors" && same=$((same + 1))
    done
done
[ "$same" = 8 ] && pass "every checkpoint (6 trained, 2 ensembles) byte-identical to the single-machine run" \
    || fail "$same of 8 checkpoints identical to the single-machine run"
mk slurm -q P=folds-ens train SCHEDULER=slurm && pass "make -q: the Slurm-trained checkpoints are up to date" \
    || { fail "make considers the Slurm-trained checkpoints out of date; make -n would run:"
        mk slurm -n P=folds-ens train SCHEDULER=slurm 2>&1 | head -n 20; }

echo "== a failing task, and re-submitting it alone"
R=$W/launcher
mkdir -p "$R"
set +e
out=$(scripts/slurm-array --name flaky --shards 3 --logs "$R/logs" --done "$R/out-{i}" \
    --task "if [ \$SLURM_ARRAY_TASK_ID = 1 ] && [ ! -e $R/fixed ]; then echo 'shard 1 broke on purpose' >&2; exit 3; fi; echo \$SLURM_ARRAY_TASK_ID/\$SHARD_COUNT > $R/out-\$SLURM_ARRAY_TASK_ID" \
    --merge "cat $R/out-0 $R/out-1 $R/out-2 > $R/merged" 2>&1)
status=$?
set -e
if [ $status -ne 0 ] && grep -q "shard 1 of 3 FAILED: exit status 3" <<<"$out" && grep -q "shard 1 broke on purpose" <<<"$out" \
    && [ ! -e "$R/merged" ]; then
    pass "a failed task fails the stage, shows its log, and the merge does not run"
else
    fail "failure handling (status $status): $out"
fi
[ -e "$R/out-0" ] && [ -e "$R/out-2" ] && [ ! -e "$R/out-1" ] && pass "the other shards finished" || fail "shards 0 and 2 did not finish"
before=$(stat -c %y "$R/out-0" "$R/out-2")
touch "$R/fixed"
out=$(scripts/slurm-array --name flaky --shards 3 --logs "$R/logs" --done "$R/out-{i}" \
    --task "echo \$SLURM_ARRAY_TASK_ID/\$SHARD_COUNT > $R/out-\$SLURM_ARRAY_TASK_ID" \
    --merge "cat $R/out-0 $R/out-1 $R/out-2 > $R/merged" 2>&1) || fail "the re-run failed: $out"
if grep -q "shards 1 of 3" <<<"$out" && [ "$before" = "$(stat -c %y "$R/out-0" "$R/out-2")" ] \
    && [ "$(cat "$R/merged" | tr '\n' ' ')" = "0/3 1/3 2/3 " ]; then
    pass "the re-run submitted shard 1 alone (it saw 1/3), kept the finished parts, and merged"
else
    fail "re-run: $out / merged: $(cat "$R/merged" 2>/dev/null)"
fi

scripts/slurm-cluster stop >/dev/null 2>&1 && pass "the cluster stopped (daemons by pid)" || fail "stopping the cluster"
if [ $failures -gt 0 ]; then echo "tests/slurm.sh: $failures FAILED"; exit 1; fi
echo "tests/slurm.sh: all passed"
