#!/usr/bin/env bash
# Make-level tests of the pipeline on a small copy of the demo pipeline, in a temporary folder:
#   1. re-run rules: what a change to each section of the pipeline file, or a rebuilt binary,
#      re-runs (make -n; nothing for a touched file or the same keys through another base),
#      and that a real re-run after a model edit leaves the feature table untouched; every
#      pipeline in pipelines/ resolves and plans
#   1a. make onnx exports the demo's checkpoint and a RAVDESS-recipe one; onnx.checker and
#      onnxruntime accept them and match ser-model predict; the README's ONNX example runs
#   2. two runs from clean give byte-identical metrics.json, feature table and weights (CPU);
#      make after a training stopped mid-run goes on from its last epoch to the same weights
#   3. a feature table written by Python (pyarrow, tests/python_features.py) replaces feature
#      extraction, and split, train, predict and eval run on it
#   4. a manifest with three labels of its own (make MANIFEST=...) trains, predicts, reports and
#      serves with them
#   4a. make robustness on the 4-fold pipeline; a deployment pipeline (kind: all, fixed epochs)
#      trains on every clip and its eval reports the 4-fold figure; ensemble.yaml makes each
#      checkpoint (a fold's, the deployment one) the mean of members of several seeds
#   5. make data: an offline download stops with advice; a damaged download is refused (RAVDESS
#      and nEMO); nEMO's names and data.tsv read by --corpus nemo
#   6. make clean P=demo removes the demo's outputs alone; make clean-all removes every pipeline's
#      outputs
#   7. every make goal, pipeline, binary command and flag the README and docs/ show exists
# PROFILE picks the binaries (default test-release, which `make test-cargo` has built).
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-test-release}
W=$(mktemp -d "${TMPDIR:-/tmp}/ser-pipeline-test.XXXXXX")
trap 'rm -rf "$W"' EXIT
failures=0
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
mk() { make -s --no-print-directory PROFILE="$PROFILE" PIPELINES="$W/pipelines" DATA="$W/data" ARTIFACTS="$W/artifacts" P=demo "$@"; }
# The stage commands `make -n eval` would run, one word each.
would_run() {
    mk -n eval | grep -oE 'ser-(features (synth|extract|split)|model (train|predict)|eval report)' \
        | sed -e 's/^ser-//' -e 's/ /:/' | sort -u | tr '\n' ' ' | sed 's/ $//' || true
}
expect_run() { # expect_run "what changed" "stage stage ..."
    local got want
    got=$(would_run)
    want=$(echo "$2" | tr ' ' '\n' | sort -u | tr '\n' ' ' | sed 's/ $//')
    if [ "$got" = "$want" ]; then pass "$1 re-runs: ${want:-nothing}"; else fail "$1 re-runs [$got], expected [$want]"; fi
}

# A small demo: the real demo pipeline as its base, fewer epochs, so each run takes seconds. The
# re-run tests below change its sections; `demo_with` writes it with extra keys.
mkdir -p "$W/pipelines"
cp pipelines/demo.yaml "$W/pipelines/demo-full.yaml"
C=$W/pipelines/demo.yaml
demo_with() { # demo_with "yaml lines" (each section once)
    printf 'extends: demo-full\n%s\n' "$1" >"$C"
}
SMALL='model: {max_epochs: 3, patience: 3}
eval: {bootstrap_resamples: 200}'
demo_with "$SMALL"
FEAT=$W/data/features/demo/features.parquet
METRICS=$W/artifacts/demo/eval/metrics.json

echo "== pipeline: first run"
start=$(date +%s)
mk eval >"$W/run1.log" 2>&1 || { cat "$W/run1.log"; fail "make eval on the small demo"; exit 1; }
pass "make eval from clean ($(($(date +%s) - start)) s)"
[ -s "$METRICS" ] && [ -s "$W/artifacts/demo/summary.json" ] && pass "metrics.json and summary.json written" \
    || fail "metrics.json or summary.json missing"

clip=$(find "$W/data/raw/demo/Actor_08" -name '*.wav' -print -quit) # no `| head`: pipefail + SIGPIPE
out=$(mk infer IN="$clip" 2>&1) && grep -q "Actor_08" <<<"$out" && pass "make infer classifies new audio with the pipeline's checkpoint" \
    || fail "make infer: $out"
for name in $(cd pipelines && ls *.yaml | sed 's/\.yaml$//'); do
    # Every pipeline resolves (its bases merged, each stage's params checked by the stage's own
    # parser), and its plan is written.
    "target/$PROFILE/ser-pipeline" --quiet plan "$name" --pipelines pipelines --artifacts "$W/plans" \
        --out "$W/plans/$name/pipeline/plan.mk" >/dev/null 2>"$W/plan.err" \
        && pass "pipelines/$name.yaml resolves and plans" || fail "pipelines/$name.yaml: $(cat "$W/plan.err")"
    if [ -f "$W/plans/$name/pipeline/infer.yaml" ]; then
        "target/$PROFILE/ser-infer" --config "$W/plans/$name/pipeline/infer.yaml" predict --checkpoint "$W/artifacts/demo/model" "$clip" \
            >/dev/null 2>"$W/infer.err" && pass "$name's infer section is valid" || fail "$name's infer section: $(cat "$W/infer.err")"
    fi
done

echo "== ONNX export"
PY=${SER_PYTHON:-python3}
mk onnx >"$W/onnx.log" 2>&1 && [ -s "$W/artifacts/demo/model.onnx" ] && pass "make onnx wrote artifacts/demo/model.onnx" \
    || { cat "$W/onnx.log"; fail "make onnx"; }
if "$PY" -c 'import onnx, onnxruntime, pyarrow, numpy' 2>/dev/null; then
    "$PY" tests/onnx_check.py "$W/artifacts/demo/model.onnx" "$FEAT" "$W/artifacts/demo/predictions/predictions.parquet" \
        --readme docs/guide/onnx.md --ser-features "target/$PROFILE/ser-features" --audio-root "$W/data/raw/demo" \
        || fail "the demo's ONNX model in onnx.checker and onnxruntime, and the ONNX guide's example"
    # The current RAVDESS recipe's network (ravdess-emobox's, through its bases), one epoch on the
    # demo's corpus and split, one model.
    cp pipelines/ravdess.yaml pipelines/ravdess-speaker.yaml pipelines/ravdess-emobox.yaml "$W/pipelines/"
    printf 'extends: ravdess-emobox\ndata: [demo]\nsplit: !replace {kind: speaker, test_speakers: ["07", "08"], val_speakers: ["06"]}\nmodel: {max_epochs: 1}\nensemble: null\n' \
        >"$W/pipelines/recipe.yaml"
    mk P=recipe predict onnx >"$W/recipe.log" 2>&1 || { tail -n 20 "$W/recipe.log"; fail "make predict onnx P=recipe"; }
    "$PY" tests/onnx_check.py "$W/artifacts/recipe/model.onnx" "$W/data/features/recipe/features.parquet" \
        "$W/artifacts/recipe/predictions/predictions.parquet" \
        || fail "the RAVDESS recipe's ONNX model in onnx.checker and onnxruntime"
elif [ -n "${SER_REQUIRE_PYTHON:-}" ]; then
    fail "SER_REQUIRE_PYTHON is set but $PY lacks onnx/onnxruntime/pyarrow/numpy"
else
    echo "SKIPPED: the ONNX interop test needs $PY with onnx, onnxruntime, pyarrow and numpy"
fi

echo "== re-run rules"
expect_run "nothing changed" ""
mk -q eval && pass "make -q eval: up to date" || fail "make -q eval says out of date after a full run"
touch "$C"; expect_run "the pipeline file touched, no key changed" ""
# Each edit adds to the ones before it, so each expects the stages before it too.
demo_with "model: {max_epochs: 3, patience: 3}
eval: {bootstrap_resamples: 200, confidence: 0.9}"
expect_run "an eval key" "eval:report"
demo_with "model: {max_epochs: 3, patience: 3, lr_factor: 0.4}
eval: {bootstrap_resamples: 200, confidence: 0.9}"
expect_run "a model key" "model:train model:predict eval:report"
demo_with "model: {max_epochs: 3, patience: 3, lr_factor: 0.4}
eval: {bootstrap_resamples: 200, confidence: 0.9}
split: {val_speakers: [\"05\"]}"
expect_run "a split key" "features:split model:train model:predict eval:report"
demo_with "model: {max_epochs: 3, patience: 3, lr_factor: 0.4}
eval: {bootstrap_resamples: 200, confidence: 0.9}
split: {val_speakers: [\"05\"]}
features: {top_db: 79.0}"
expect_run "a features key" "features:extract features:split model:train model:predict eval:report"
# Back to the small demo: every stage re-runs (its params changed back); make it current again,
# then check a rebuilt binary re-runs its stage and what follows.
demo_with "$SMALL"
mk eval >"$W/run2.log" 2>&1 || { cat "$W/run2.log"; fail "make eval after the edits"; }
expect_run "nothing changed (again)" ""
printf 'extends: demo-full\n%s\n' "$SMALL" >"$W/pipelines/other-base.yaml"
printf 'extends: other-base\n' >"$C"
expect_run "the same keys through another base" ""
demo_with "$SMALL"
touch "target/$PROFILE/ser-eval"; expect_run "a rebuilt ser-eval" "eval:report"
touch "target/$PROFILE/ser-model"; expect_run "a rebuilt ser-model" "model:train model:predict eval:report"
mk eval >"$W/run3.log" 2>&1 || { cat "$W/run3.log"; fail "make eval after touching binaries"; }
# A real edit of the model section: training and what follows run again, extraction does not.
feat_before=$(stat -c %y "$FEAT")
model_before=$(sha256sum "$W/artifacts/demo/model/model.json" | cut -d' ' -f1)
sleep 1
demo_with "model: {max_epochs: 3, patience: 3, dropout_dense: 0.4}
eval: {bootstrap_resamples: 200}"
mk eval >"$W/run4.log" 2>&1 || { cat "$W/run4.log"; fail "make eval after editing the model section"; }
feat_after=$(stat -c %y "$FEAT")
model_after=$(sha256sum "$W/artifacts/demo/model/model.json" | cut -d' ' -f1)
[ "$feat_before" = "$feat_after" ] && pass "editing the model section left the feature table alone" \
    || fail "editing the model section rewrote the feature table"
[ "$model_before" != "$model_after" ] && grep -q '"dropout_dense": *0.4' "$W/artifacts/demo/model/model.json" \
    && pass "editing the model section retrained with the new value" || fail "the checkpoint does not reflect the model edit"
grep -q "ser-features extract" "$W/run4.log" && fail "extraction ran after a model edit" || true

echo "== two runs from clean give the same numbers"
demo_with "$SMALL"
mk clean >/dev/null
mk eval >"$W/run5.log" 2>&1 || { cat "$W/run5.log"; fail "make eval (reproducibility run 1)"; }
mkdir -p "$W/first"
cp "$METRICS" "$FEAT" "$W/artifacts/demo/model/model.safetensors" "$W/artifacts/demo/predictions/predictions.parquet" "$W/first/"
mk clean >/dev/null
mk eval >"$W/run6.log" 2>&1 || { cat "$W/run6.log"; fail "make eval (reproducibility run 2)"; }
for f in metrics.json features.parquet model.safetensors predictions.parquet; do
    case $f in
        metrics.json) second=$METRICS ;;
        features.parquet) second=$FEAT ;;
        model.safetensors) second=$W/artifacts/demo/model/model.safetensors ;;
        predictions.parquet) second=$W/artifacts/demo/predictions/predictions.parquet ;;
    esac
    cmp -s "$W/first/$f" "$second" && pass "$f identical in two runs from clean" || fail "$f differs between two runs from clean"
done

echo "== an interrupted training goes on where it stopped"
# What a kill after the first epoch leaves: the resume point and no model.json. (max_epochs is not
# part of what a resume must share, so a 1-epoch run's resume point is the 3-epoch run's after one.)
demo_with "model: {max_epochs: 1, patience: 3}
eval: {bootstrap_resamples: 200}"
mk train >"$W/int1.log" 2>&1 || { cat "$W/int1.log"; fail "make train (1 epoch)"; }
rm "$W/artifacts/demo/model/model.json"
demo_with "$SMALL"
mk eval >"$W/int2.log" 2>&1 || { cat "$W/int2.log"; fail "make eval after an interrupted training"; }
grep -q "resuming after epoch 1" "$W/int2.log" && cmp -s "$W/first/model.safetensors" "$W/artifacts/demo/model/model.safetensors" \
    && cmp -s "$W/first/metrics.json" "$METRICS" \
    && pass "make went on from the interrupted run's epoch 1 to the uninterrupted run's weights and metrics" \
    || fail "make after an interrupted training: $(grep -E 'resuming|first epoch' "$W/int2.log")"
# A finished checkpoint make retrains (here: a rebuilt binary) trains from the first epoch.
touch "target/$PROFILE/ser-model"
mk eval >"$W/int3.log" 2>&1 || { cat "$W/int3.log"; fail "make eval after a rebuilt ser-model"; }
grep -q "holds a finished run: training again from the first epoch" "$W/int3.log" && ! grep -q "resuming after" "$W/int3.log" \
    && cmp -s "$W/first/model.safetensors" "$W/artifacts/demo/model/model.safetensors" \
    && pass "a finished checkpoint that make retrains trains from the first epoch" \
    || fail "retraining a finished checkpoint: $(grep -E 'resuming|first epoch' "$W/int3.log")"

echo "== a feature stage written in Python"
if "$PY" -c 'import numpy, pyarrow' 2>/dev/null; then
    mk clean >/dev/null
    mk "$W/data/raw/demo/.done" >/dev/null 2>&1
    mkdir -p "$(dirname "$FEAT")"
    "$PY" tests/python_features.py "$W/data/raw/demo" "$FEAT" >"$W/py.log" 2>&1 || { cat "$W/py.log"; fail "tests/python_features.py"; }
    expect_run "a Python-written feature table" "features:split model:train model:predict eval:report"
    mk eval >"$W/run7.log" 2>&1 || { cat "$W/run7.log"; fail "make eval on the Python-written table"; }
    if [ -s "$METRICS" ] && grep -q '"kind": *"log_mel"' "$W/artifacts/demo/model/model.json"; then
        pass "split, train, predict and eval ran on the Python table (accuracy $(grep -m1 '"accuracy"' "$METRICS" | tr -dc '0-9.'))"
    else
        fail "the pipeline did not run on the Python-written table"
    fi
elif [ -n "${SER_REQUIRE_PYTHON:-}" ]; then
    fail "SER_REQUIRE_PYTHON is set but $PY lacks numpy/pyarrow"
else
    echo "SKIPPED: the Python feature stage test needs $PY with numpy and pyarrow (pip install numpy pyarrow)"
fi

echo "== a k-fold split trains and scores every fold"
printf 'extends: demo\nsplit: !replace {kind: speaker_kfold, k: 4, val_speakers: 1, seed: 1}\n' >"$W/pipelines/kfold.yaml"
mk P=kfold eval >"$W/kfold.log" 2>&1 || { tail -n 30 "$W/kfold.log"; fail "make eval on a 4-fold pipeline"; }
n_models=$(find "$W/artifacts/kfold/folds" -name model.json | wc -l)
# ser-eval names each fold's predictions file in its summary of runs.
n_runs=$(grep -o 'folds/[0-9]/predictions/predictions.parquet' "$W/artifacts/kfold/summary.json" 2>/dev/null | sort -u | wc -l)
[ "$n_models" = 4 ] && [ "$n_runs" = 4 ] && pass "4 folds trained, predicted and reported (per fold and pooled)" \
    || fail "k-fold: $n_models checkpoints, $n_runs fold predictions in summary.json, expected 4 and 4"

echo "== robustness suite and a deployment pipeline"
mk P=kfold robustness CHANNELS="noise_10db gain_-20db" >"$W/robust.log" 2>&1 || { tail -n 30 "$W/robust.log"; fail "make robustness"; }
R=$W/artifacts/kfold/robustness/robustness.md
[ -s "$R" ] && grep -q '^| clean |' "$R" && grep -q '^| noise_10db |' "$R" && grep -q '^| gain_-20db |' "$R" \
    && grep -q '^Mean UAR over the 3 conditions (clean included): ' "$R" \
    && "$PY" -c 'import json,sys; s=json.load(open(sys.argv[1]))["summary"]; assert s["conditions"]==3 and 0<=s["mean_uar"]<=1 and s["largest_share_condition"] in ("clean","noise_10db","gain_-20db"), s' "${R%.md}.json" \
    && [ "$(find "$W/artifacts/kfold/robustness/noise_10db/folds" -name predictions.parquet | wc -l)" = 4 ] \
    && pass "make robustness scores every fold's test part through each channel, one table and its summary" || fail "make robustness: $(cat "$R" 2>/dev/null)"
# PART=val: the same table on the validation actors, clean included, for choosing a recipe.
mk P=kfold robustness PART=val CHANNELS="noise_10db" >"$W/robust-val.log" 2>&1 || { tail -n 30 "$W/robust-val.log"; fail "make robustness PART=val"; }
RV=$W/artifacts/kfold/robustness-val
[ -s "$RV/robustness.md" ] && grep -q '^| clean |' "$RV/robustness.md" && grep -q '^| noise_10db |' "$RV/robustness.md" \
    && grep -q 'val part as recorded' "$RV/clean/eval/report.md" && grep -q 'val part through noise_10db' "$RV/noise_10db/eval/report.md" \
    && ! grep -q -- '--part test' "$W/robust-val.log" \
    && pass "make robustness PART=val scores the validation part, clean and through each channel" \
    || fail "make robustness PART=val: $(cat "$RV/robustness.md" 2>/dev/null)"
# Trained on every clip for a fixed number of epochs; its eval is the 4-fold figure it stands on.
printf 'extends: kfold\nsplit: !replace {kind: all, cross_validation: kfold}\nmodel: {early_stopping_on: none}\ntune: null\n' \
    >"$W/pipelines/kfold-deploy.yaml"
mk P=kfold-deploy eval >"$W/deploy.log" 2>&1 || { tail -n 30 "$W/deploy.log"; fail "make eval P=kfold-deploy"; }
D=$W/artifacts/kfold-deploy
grep -q 'fixed 3 epochs' "$D/model/model.json" && grep -q '^1,[0-9.]*,[0-9.]*,,,,,' "$D/model/history.csv" \
    && pass "the deployment model trained 3 fixed epochs with no validation part" || fail "deployment training: $(head -c 400 "$D/model/model.json")"
cv_n=$(grep -o '"n": *[0-9]*' "$W/artifacts/kfold/eval/metrics.json" | sed -n 1p)
grep -q 'cross-validation of kfold' "$D/eval/report.md" && [ "$(grep -o '"n": *[0-9]*' "$D/eval/metrics.json" | sed -n 1p)" = "$cv_n" ] \
    && pass "make eval of the deployment pipeline reports kfold's cross-validated figure" || fail "deployment eval: $(head -n 5 "$D/eval/report.md")"
mk -q P=kfold-deploy eval && pass "make -q: the deployment pipeline is up to date after its eval" || fail "make -q P=kfold-deploy eval: out of date"
out=$(mk P=kfold-deploy robustness 2>&1) && fail "make robustness of a pipeline with no test part succeeded" \
    || { echo "$out" | grep -q 'has no test part; its robustness is that of its folds: make robustness P=kfold' \
        && pass "make robustness of the deployment pipeline points to its folds' pipeline" || fail "make robustness P=kfold-deploy said: $out"; }
out=$(mk P=kfold-deploy tune 2>&1) && fail "make tune of a pipeline with no tune section succeeded" \
    || { echo "$out" | grep -q 'pipeline kfold-deploy has no tune section' \
        && pass "make tune of a pipeline with no tune section says so" || fail "make tune P=kfold-deploy said: $out"; }

echo "== ensembles"
# ensemble.yaml: each fold's checkpoint is the mean of members trained with each seed.
printf 'extends: kfold\nensemble: {seeds: [1, 2]}\n' >"$W/pipelines/kfold-ens.yaml"
mk P=kfold-ens eval >"$W/ens.log" 2>&1 || { tail -n 30 "$W/ens.log"; fail "make eval P=kfold-ens"; }
E=$W/artifacts/kfold-ens
n_members=$(find "$E/folds" -path '*/members/seed-*/model.json' | wc -l)
n_ens=$(grep -l '"combine": "mean_probabilities"' "$E"/folds/*/model/model.json 2>/dev/null | wc -l)
n_curves=$(tr -d '\n ' <"$E/eval/metrics.json" | grep -o '"histories":\[[^]]*\]' | grep -o 'members/seed-[12]/history.csv' | wc -l)
[ "$n_members" = 8 ] && [ "$n_ens" = 4 ] && [ -s "$E/eval/metrics.json" ] \
    && pass "a 4-fold ensemble pipeline: 8 members trained, 4 ensembles predicted and reported" \
    || fail "kfold-ens: $n_members members, $n_ens ensembles (expected 8 and 4)"
[ "$n_curves" = 8 ] && [ -s "$E/eval/curves.png" ] \
    && pass "its report draws the 8 members' training curves" \
    || fail "kfold-ens: the report's curves came from $n_curves members' histories (expected 8)"
# Another pipeline's checkpoints as members (`pipelines:`): each fold joins its own seed's member
# with kfold's model of the same fold (kfold's own rules made it above; nothing is retrained).
printf 'extends: kfold\nensemble: {seeds: [1], pipelines: [kfold]}\n' >"$W/pipelines/kfold-mix.yaml"
before=$(stat -c %Y "$W"/artifacts/kfold/folds/*/model/model.json)
mk P=kfold-mix eval >"$W/mix.log" 2>&1 || { tail -n 30 "$W/mix.log"; fail "make eval P=kfold-mix"; }
X=$W/artifacts/kfold-mix
n_joined=$(grep -l "artifacts/kfold/folds/[0-3]/model" "$X"/folds/*/model/model.json 2>/dev/null | wc -l)
n_curves=$(tr -d '\n ' <"$X/eval/metrics.json" | grep -o '"histories":\[[^]]*\]' | grep -o 'history.csv' | wc -l)
[ "$n_joined" = 4 ] && [ "$before" = "$(stat -c %Y "$W"/artifacts/kfold/folds/*/model/model.json)" ] && [ "$n_curves" = 8 ] \
    && pass "an ensemble with pipelines: [kfold]: each fold joins its seed's member and kfold's model of that fold" \
    || fail "kfold-mix: $n_joined folds joined kfold's model, $n_curves curves; $(tail -n 5 "$W/mix.log")"
# Two pipelines named: each fold's ensemble takes the seed's member, then kfold's, then the
# second pipeline's model of that fold, in the order ensemble.yaml names them (a dry run).
printf 'extends: kfold\n' >"$W/pipelines/kfold-b.yaml"
printf 'extends: kfold\nensemble: {seeds: [1], pipelines: [kfold, kfold-b]}\n' >"$W/pipelines/kfold-mix2.yaml"
plan=$(mk -n P=kfold-mix2 train 2>&1) || fail "make -n P=kfold-mix2 train: $plan"
n_ordered=0
for f in 0 1 2 3; do
    grep -q "ser-model ensemble .*kfold-mix2/folds/$f/members/seed-1 [^ ]*artifacts/kfold/folds/$f/model [^ ]*artifacts/kfold-b/folds/$f/model" <<<"$plan" \
        && n_ordered=$((n_ordered + 1))
done
[ "$n_ordered" = 4 ] && grep -q 'ser-model train .*kfold-b' <<<"$plan" && ! grep -q 'ser-model train .*artifacts/kfold/' <<<"$plan" \
    && pass "pipelines: [kfold, kfold-b]: each fold joins its seed's member, kfold's and kfold-b's models, in that order; kfold is not retrained" \
    || fail "kfold-mix2: $n_ordered of 4 folds joined in order; $(grep 'ser-model' <<<"$plan" | head -n 12)"
printf 'extends: kfold\nensemble: {seeds: [1], pipelines: [kfold-ens]}\n' >"$W/pipelines/mix-of-ens.yaml"
out=$(mk -n P=mix-of-ens train 2>&1) && fail "an ensemble of ensembles was accepted" \
    || { grep -q 'kfold-ens is an ensemble itself' <<<"$out" && pass "pipelines: naming an ensemble is refused, by name" \
    || fail "pipelines: [kfold-ens]: $out"; }
# A member pipeline whose folds are drawn otherwise may have trained on a fold's test speakers.
printf 'extends: kfold\nsplit: {seed: 2}\n' >"$W/pipelines/kfold-other.yaml"
printf 'extends: kfold\nensemble: {seeds: [1], pipelines: [kfold-other]}\n' >"$W/pipelines/mix-other.yaml"
out=$(mk -n P=mix-other train 2>&1) && fail "a member pipeline split otherwise was accepted" \
    || { grep -q 'kfold-other: it splits its clips otherwise' <<<"$out" && pass "a member pipeline split otherwise is refused, by name" \
    || fail "pipelines: [kfold-other]: $out"; }
# The deployment pipeline as an ensemble: members on every clip, one checkpoint for predict,
# export and ser-infer.
printf 'extends: kfold-deploy\nensemble: {seeds: [1, 2]}\n' >"$W/pipelines/deploy-ens.yaml"
mk P=deploy-ens eval onnx >"$W/deploy-ens.log" 2>&1 || { tail -n 30 "$W/deploy-ens.log"; fail "make eval onnx P=deploy-ens"; }
DE=$W/artifacts/deploy-ens
[ -s "$DE/members/seed-1/model.json" ] && [ -s "$DE/members/seed-2/model.json" ] \
    && grep -q '"seed": 2' "$DE/model/model.json" && [ -s "$DE/model.onnx" ] \
    && pass "the deployment ensemble: two members joined, evaluated on kfold's folds, exported to ONNX" \
    || fail "deploy-ens: $(ls -R "$DE" | head -n 20)"
if out=$("target/$PROFILE/ser-infer" predict --format jsonl --checkpoint "$DE/model" "$clip" 2>&1) && grep -q '"label"' <<<"$out"; then
    pass "ser-infer predict answers with the ensemble"
else
    fail "ser-infer on the ensemble: $out"
fi
if "$PY" -c 'import onnx, onnxruntime, pyarrow, numpy' 2>/dev/null; then
    "target/$PROFILE/ser-model" --quiet predict --checkpoint "$DE/model" --features "$W/data/features/deploy-ens/features.parquet" \
        --out "$W/deploy-ens-all.parquet" >/dev/null \
        && "$PY" tests/onnx_check.py "$DE/model.onnx" "$W/data/features/deploy-ens/features.parquet" "$W/deploy-ens-all.parquet" \
        || fail "the ensemble's ONNX model in onnx.checker and onnxruntime"
fi
printf 'extends: kfold-deploy\nensemble: {seeds: [1, 2, 3]}\n' >"$W/pipelines/deploy-ens.yaml"
plan=$(mk -n P=deploy-ens eval)
trains=$(grep 'ser-model train' <<<"$plan" || true)
[ "$(wc -l <<<"$trains")" = 1 ] && grep -q -- '--seed 3 .*members/seed-3' <<<"$trains" \
    && [ "$(grep -c 'ser-model ensemble' <<<"$plan")" = 1 ] \
    && pass "a seed added to ensemble.yaml trains that member alone, then joins the ensemble" \
    || fail "make -n after adding a seed: $plan"

echo "== labels of your own, end to end"
# A manifest gives three made-up labels to part of the synthetic corpus; make extracts, splits,
# trains, predicts and reports on them, and predict and the service answer with them.
printf 'extends: demo\n' >"$W/pipelines/own.yaml"
M=$W/own/corpus.csv
mkdir -p "$W/own"
{
    echo "path,label,speaker"
    find "$W/data/raw/demo" -name '*.wav' | sort | while read -r f; do
        actor=$(basename "$(dirname "$f")"); code=$(basename "$f" | cut -d- -f3)
        case $code in 05) label=frustrated ;; 03) label=excited ;; 04) label=bored ;; *) continue ;; esac
        echo "$f,$label,${actor#Actor_}"
    done
} >"$M"
mk P=own MANIFEST="$M" eval >"$W/own.log" 2>&1 || { tail -n 30 "$W/own.log"; fail "make eval P=own MANIFEST=..."; }
OWN=$W/artifacts/own
if grep -q '"labels": *\[ *"bored", *"excited", *"frustrated" *\]' <(tr -d '\n' <"$OWN/model/model.json") 2>/dev/null; then
    pass "the checkpoint carries the manifest's labels [bored, excited, frustrated]"
else
    fail "the checkpoint's labels are not the manifest's: $(grep -o '"labels": *\[[^]]*\]' "$OWN/model/model.json" | head -c 300)"
fi
report=$OWN/eval/report.md
[ -s "$report" ] && grep -q frustrated "$report" && grep -q excited "$report" && grep -q bored "$report" \
    && ! grep -qiE '\b(angry|calm|fearful|surprised|disgust)\b' "$report" \
    && pass "the report is on bored, excited and frustrated alone" || fail "the report's classes are not the manifest's"
clip=$(grep ',frustrated,07$' "$M" | cut -d, -f1 | sed -n 1p)
out=$("target/$PROFILE/ser-infer" predict --checkpoint "$OWN/model" --format jsonl "$clip" 2>&1) \
    && grep -qE '"label":"(bored|excited|frustrated)"' <<<"$out" && grep -q '"p_bored"\|"bored":' <<<"$out" \
    && pass "ser-infer predict answers in the manifest's labels" || fail "ser-infer predict: $out"
"target/$PROFILE/ser-infer" serve --checkpoint "$OWN/model" --addr 127.0.0.1:0 >"$W/serve.out" 2>"$W/serve.err" &
serve_pid=$!
for _ in $(seq 50); do grep -q '^http://' "$W/serve.out" && break; sleep 0.2; done
addr=$(sed -n 's|^http://||p' "$W/serve.out" | sed -n 1p)
model=$(exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}" && printf 'GET /v1/model HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3 && cat <&3) || true
kill -TERM "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null || true
grep -q '"labels":\["bored","excited","frustrated"\]' <<<"$model" \
    && pass "/v1/model shows the manifest's labels" || fail "/v1/model: ${model:0:300} $(cat "$W/serve.err")"

echo "== make data"
out=$(make -s --no-print-directory data-ravdess DATA="$W/fetch" RAVDESS_URL=http://127.0.0.1:9/none.zip 2>&1) && fail "make data offline succeeded" \
    || { grep -q "RAVDESS_ARCHIVE=" <<<"$out" && pass "make data offline stops and says what to do" || fail "make data offline: no advice: $out"; }
echo "not a zip" >"$W/bad.zip"
out=$(make -s --no-print-directory data-ravdess DATA="$W/fetch" RAVDESS_URL="file://$W/bad.zip" 2>&1) && fail "a damaged download was accepted" \
    || { grep -q "MD5" <<<"$out" && [ ! -e "$W/fetch/downloads/Audio_Speech_Actors_01-24.zip" ] && [ ! -e "$W/fetch/raw/ravdess" ] \
         && pass "make data refuses a download with the wrong checksum and keeps nothing" || fail "checksum: $out"; }
mkdir -p "$W/zip/Actor_01" && cp "$(find "$W/data/raw/demo/Actor_01" -name '*.wav' -print -quit)" "$W/zip/Actor_01/"
if (cd "$W/zip" && "$PY" -c 'import shutil; shutil.make_archive("../good", "zip", ".")') 2>/dev/null \
    && command -v unzip >/dev/null; then
    md5=$(md5sum "$W/good.zip" | cut -d' ' -f1)
    make -s --no-print-directory data-ravdess DATA="$W/fetch" RAVDESS_URL="file://$W/good.zip" RAVDESS_MD5="$md5" >/dev/null 2>&1 \
        && [ "$(find "$W/fetch/raw/ravdess/Actor_01" -name '*.wav' | wc -l)" = 1 ] \
        && pass "make data downloads, checks the MD5 and unpacks" || fail "make data with a good download"
else
    echo "SKIPPED: the good-download check needs $PY (to write a zip) and unzip"
fi

# nEMO: a small stand-in of the authors' layout (samples/ and data.tsv; generated clips renamed),
# offline, damaged, and good, by folder and by archive; then its file names and data.tsv read
# by ser-features extract --corpus nemo.
N=$W/nemo-src/nEMO-main
mkdir -p "$N/samples"
printf 'file_id\temotion\traw_text\tnormalized_text\tspeaker_id\tgender\tage\n' >"$N/data.tsv"
i=0
for f in $(find "$W/data/raw/demo/Actor_01" "$W/data/raw/demo/Actor_02" -name '*.wav' | sort | head -n 12); do
    i=$((i + 1)); spk=$([ $((i % 2)) = 0 ] && echo KS0 || echo KD0); gender=$([ $spk = KS0 ] && echo male || echo female)
    emo=$(echo anger sadness neutral happiness | cut -d' ' -f$((i % 4 + 1)))
    cp "$f" "$N/samples/${spk}_${emo}_$i.wav"
    printf '%s_%s_%s.wav\t%s\tZdanie numer %s.\tzdanie numer %s\t        %s\t%s\t23\n' "$spk" "$emo" "$i" "$emo" "$i" "$i" "$spk" "$gender" >>"$N/data.tsv"
done
digest=$(cd "$N" && LC_ALL=C sha256sum data.tsv samples/*.wav | sha256sum | cut -d' ' -f1)
out=$(make -s --no-print-directory data-nemo DATA="$W/nfetch" NEMO_URL=http://127.0.0.1:9/none.tar.gz 2>&1) && fail "make data-nemo offline succeeded" \
    || { grep -q "NEMO_DIR=" <<<"$out" && pass "make data-nemo offline stops and says what to fetch by hand" || fail "make data-nemo offline: $out"; }
(cd "$W/nemo-src" && tar czf ../nemo.tar.gz nEMO-main)
out=$(make -s --no-print-directory data-nemo DATA="$W/nfetch" NEMO_URL="file://$W/nemo.tar.gz" 2>&1) && fail "a nEMO download with another digest was accepted" \
    || { grep -q "content digest $digest, expected" <<<"$out" && [ ! -e "$W/nfetch/raw/nemo" ] && [ -z "$(ls "$W/nfetch/downloads")" ] \
         && pass "make data-nemo refuses files of another digest and keeps nothing" || fail "nEMO digest: $out"; }
make -s --no-print-directory data-nemo DATA="$W/nfetch" NEMO_URL="file://$W/nemo.tar.gz" NEMO_SHA256="$digest" >/dev/null 2>&1 \
    && [ "$(find "$W/nfetch/raw/nemo/samples" -name '*.wav' | wc -l)" = 12 ] \
    && pass "make data-nemo downloads, checks the content digest and unpacks" || fail "make data-nemo with a good download"
make -s --no-print-directory data-nemo DATA="$W/nlink" NEMO_DIR="$N" NEMO_SHA256="$digest" >/dev/null 2>&1 && [ -L "$W/nlink/raw/nemo" ] \
    && pass "make data-nemo NEMO_DIR= links the folder" || fail "make data-nemo NEMO_DIR="
"target/$PROFILE/ser-features" --quiet extract --config "$W/plans/demo/pipeline/features.yaml" --corpus nemo --in "$W/nlink/raw/nemo" \
    --out "$W/nemo.parquet" >/dev/null 2>"$W/nemo.err" || fail "extract --corpus nemo: $(cat "$W/nemo.err")"
"$PY" - "$W/nemo.parquet" <<'PY' && pass "--corpus nemo keeps speakers, genders, labels and the sentence text" || fail "--corpus nemo's table"
import sys, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1], columns=["clip_id", "corpus", "speaker", "gender", "label", "statement"]).to_pylist()
assert len(t) == 12, len(t)
for r in t:
    assert r["corpus"] == "nemo" and r["speaker"] in ("KS0", "KD0"), r
    assert r["gender"] == ("male" if r["speaker"] == "KS0" else "female"), r
    assert r["label"] in ("angry", "sad", "neutral", "happy"), r
    assert r["statement"] == "Zdanie numer %s." % r["clip_id"].rsplit("_", 1)[1], r
PY

echo "== the documentation's commands"
# Each make goal, pipeline, binary command and flag that README.md and docs/ show exists as
# written (the goals themselves run above, on the demo).
mk $(for b in ser-features ser-model ser-tune ser-eval ser-infer ser-pipeline; do echo "target/$PROFILE/$b"; done) >/dev/null 2>&1
"${SER_PYTHON:-python3}" tests/doc_commands.py "target/$PROFILE" README.md docs/ ARCHITECTURE.md pipelines/README.md models/ \
    >"$W/doc-commands.log" 2>&1 && pass "$(tail -n1 "$W/doc-commands.log")" || { cat "$W/doc-commands.log"; fail "the documentation shows commands that do not exist"; }

echo "== make clean removes one pipeline's outputs"
mkdir -p "$W/artifacts/other/model" "$W/data/features/other"
touch "$W/artifacts/other/model/model.json" "$W/data/features/other/features.parquet"
mk clean >/dev/null 2>&1 || fail "make clean P=demo"
[ ! -e "$W/artifacts/demo" ] && [ ! -e "$W/data/features/demo" ] && [ ! -e "$W/data/raw/demo" ] \
    && pass "make clean P=demo removed the demo's features, artifacts and corpus" || fail "make clean P=demo left demo outputs"
[ -e "$W/artifacts/other/model/model.json" ] && [ -e "$W/data/features/other/features.parquet" ] \
    && pass "make clean P=demo kept another pipeline's model and features" || fail "make clean P=demo removed another pipeline's outputs"
mk clean-all >/dev/null 2>&1 || fail "make clean-all"
[ ! -e "$W/artifacts/other" ] && [ ! -e "$W/data/features" ] && pass "make clean-all removed every pipeline's outputs" \
    || fail "make clean-all left outputs"

if [ $failures -gt 0 ]; then echo "tests/pipeline.sh: $failures FAILED"; exit 1; fi
echo "tests/pipeline.sh: all passed"
