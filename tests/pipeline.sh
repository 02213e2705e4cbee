#!/usr/bin/env bash
# Make-level tests of the pipeline on a small copy of the demo pipeline, in a temporary folder:
#   1. re-run rules: what a change to each params file, or a rebuilt binary, re-runs (make -n),
#      and that a real re-run after a model.yaml edit leaves the feature table untouched
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
#   5. make data: an offline download stops with advice; a damaged download is refused
#   6. make clean P=demo removes the demo's outputs alone; make clean-all removes every pipeline's
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

# A small demo: fewer epochs, so each run takes seconds.
mkdir -p "$W/pipelines"
cp -r pipelines/demo "$W/pipelines/demo"
sed -i -e 's/^max_epochs: .*/max_epochs: 3/' -e 's/^patience: .*/patience: 3/' "$W/pipelines/demo/model.yaml"
sed -i -e 's/^bootstrap_resamples: .*/bootstrap_resamples: 200/' "$W/pipelines/demo/eval.yaml"
C=$W/pipelines/demo
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
for f in pipelines/*/infer.yaml; do
    "target/$PROFILE/ser-infer" --config "$f" predict --checkpoint "$W/artifacts/demo/model" "$clip" >/dev/null 2>"$W/infer.err" \
        && pass "$f is a valid infer.yaml" || fail "$f: $(cat "$W/infer.err")"
done

echo "== ONNX export"
PY=${SER_PYTHON:-python3}
mk onnx >"$W/onnx.log" 2>&1 && [ -s "$W/artifacts/demo/model.onnx" ] && pass "make onnx wrote artifacts/demo/model.onnx" \
    || { cat "$W/onnx.log"; fail "make onnx"; }
if "$PY" -c 'import onnx, onnxruntime, pyarrow, numpy' 2>/dev/null; then
    "$PY" tests/onnx_check.py "$W/artifacts/demo/model.onnx" "$FEAT" "$W/artifacts/demo/predictions/predictions.parquet" \
        --readme README.md --ser-features "target/$PROFILE/ser-features" --audio-root "$W/data/raw/demo" \
        || fail "the demo's ONNX model in onnx.checker and onnxruntime, and the README's example"
    # The current RAVDESS recipe's network (ravdess-emobox's model.yaml), one epoch on the demo.
    mkdir -p "$W/pipelines/recipe"
    cp "$C"/*.yaml "$W/pipelines/recipe/"
    sed -e 's/^max_epochs: .*/max_epochs: 1/' pipelines/ravdess-emobox/model.yaml >"$W/pipelines/recipe/model.yaml"
    ln -sfn "$W/data/raw/demo" "$W/data/raw/ravdess" # a pipeline other than demo reads data/raw/ravdess
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
touch "$C/eval.yaml"; expect_run "eval.yaml" "eval:report"
touch "$C/model.yaml"; expect_run "model.yaml" "model:train model:predict eval:report"
touch "$C/split.yaml"; expect_run "split.yaml" "features:split model:train model:predict eval:report"
touch "$C/features.yaml"; expect_run "features.yaml" "features:extract features:split model:train model:predict eval:report"
# Make everything current again, then check a rebuilt binary re-runs its stage and what follows.
mk eval >"$W/run2.log" 2>&1 || { cat "$W/run2.log"; fail "make eval after touching every params file"; }
expect_run "nothing changed (again)" ""
touch "target/$PROFILE/ser-eval"; expect_run "a rebuilt ser-eval" "eval:report"
touch "target/$PROFILE/ser-model"; expect_run "a rebuilt ser-model" "model:train model:predict eval:report"
mk eval >"$W/run3.log" 2>&1 || { cat "$W/run3.log"; fail "make eval after touching binaries"; }
# A real edit of model.yaml: training and what follows run again, extraction does not.
feat_before=$(stat -c %y "$FEAT")
model_before=$(sha256sum "$W/artifacts/demo/model/model.json" | cut -d' ' -f1)
sleep 1
sed -i 's/^dropout_dense: .*/dropout_dense: 0.4/' "$C/model.yaml"
mk eval >"$W/run4.log" 2>&1 || { cat "$W/run4.log"; fail "make eval after editing model.yaml"; }
feat_after=$(stat -c %y "$FEAT")
model_after=$(sha256sum "$W/artifacts/demo/model/model.json" | cut -d' ' -f1)
[ "$feat_before" = "$feat_after" ] && pass "editing model.yaml left the feature table alone" \
    || fail "editing model.yaml rewrote the feature table"
[ "$model_before" != "$model_after" ] && grep -q '"dropout_dense": *0.4' "$W/artifacts/demo/model/model.json" \
    && pass "editing model.yaml retrained with the new value" || fail "the checkpoint does not reflect the model.yaml edit"
grep -q "ser-features extract" "$W/run4.log" && fail "extraction ran after a model.yaml edit" || true

echo "== two runs from clean give the same numbers"
sed -i 's/^dropout_dense: .*/dropout_dense: 0.5/' "$C/model.yaml"
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
sed -i 's/^max_epochs: .*/max_epochs: 1/' "$C/model.yaml"
mk train >"$W/int1.log" 2>&1 || { cat "$W/int1.log"; fail "make train (1 epoch)"; }
rm "$W/artifacts/demo/model/model.json"
sed -i 's/^max_epochs: .*/max_epochs: 3/' "$C/model.yaml"
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
mkdir -p "$W/pipelines/kfold"
cp "$C"/*.yaml "$W/pipelines/kfold/"
printf 'kind: speaker_kfold\nk: 4\nval_speakers: 1\nseed: 1\n' >"$W/pipelines/kfold/split.yaml"
ln -sfn "$W/data/raw/demo" "$W/data/raw/ravdess" # a pipeline other than demo reads data/raw/ravdess
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
mkdir -p "$W/pipelines/kfold-deploy"
cp "$W/pipelines/kfold"/*.yaml "$W/pipelines/kfold-deploy/"
printf 'kind: all\ncross_validation: kfold\n' >"$W/pipelines/kfold-deploy/split.yaml"
sed -i 's/^early_stopping_on: .*/early_stopping_on: none/' "$W/pipelines/kfold-deploy/model.yaml"
mk P=kfold-deploy eval >"$W/deploy.log" 2>&1 || { tail -n 30 "$W/deploy.log"; fail "make eval P=kfold-deploy"; }
D=$W/artifacts/kfold-deploy
grep -q 'fixed 3 epochs' "$D/model/model.json" && grep -q '^1,[0-9.]*,[0-9.]*,,,,,' "$D/model/history.csv" \
    && pass "the deployment model trained 3 fixed epochs with no validation part" || fail "deployment training: $(head -c 400 "$D/model/model.json")"
cv_n=$(grep -o '"n": *[0-9]*' "$W/artifacts/kfold/eval/metrics.json" | sed -n 1p)
grep -q 'cross-validation of kfold' "$D/eval/report.md" && [ "$(grep -o '"n": *[0-9]*' "$D/eval/metrics.json" | sed -n 1p)" = "$cv_n" ] \
    && pass "make eval of the deployment pipeline reports kfold's cross-validated figure" || fail "deployment eval: $(head -n 5 "$D/eval/report.md")"
mk -q P=kfold-deploy eval && pass "make -q: the deployment pipeline is up to date after its eval" || fail "make -q P=kfold-deploy eval: out of date"

echo "== ensembles"
# ensemble.yaml: each fold's checkpoint is the mean of members trained with each seed.
mkdir -p "$W/pipelines/kfold-ens"
cp "$W/pipelines/kfold"/*.yaml "$W/pipelines/kfold-ens/"
echo 'seeds: [1, 2]' >"$W/pipelines/kfold-ens/ensemble.yaml"
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
mkdir -p "$W/pipelines/kfold-mix"
cp "$W/pipelines/kfold"/*.yaml "$W/pipelines/kfold-mix/"
printf 'seeds: [1]\npipelines: [kfold]\n' >"$W/pipelines/kfold-mix/ensemble.yaml"
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
mkdir -p "$W/pipelines/kfold-b" "$W/pipelines/kfold-mix2"
cp "$W/pipelines/kfold"/*.yaml "$W/pipelines/kfold-b/" && cp "$W/pipelines/kfold"/*.yaml "$W/pipelines/kfold-mix2/"
printf 'seeds: [1]\npipelines: [kfold, kfold-b]\n' >"$W/pipelines/kfold-mix2/ensemble.yaml"
plan=$(mk -n P=kfold-mix2 train 2>&1) || fail "make -n P=kfold-mix2 train: $plan"
n_ordered=0
for f in 0 1 2 3; do
    grep -q "ser-model ensemble .*kfold-mix2/folds/$f/members/seed-1 [^ ]*artifacts/kfold/folds/$f/model [^ ]*artifacts/kfold-b/folds/$f/model" <<<"$plan" \
        && n_ordered=$((n_ordered + 1))
done
[ "$n_ordered" = 4 ] && grep -q 'ser-model train .*kfold-b' <<<"$plan" && ! grep -q 'ser-model train .*artifacts/kfold/' <<<"$plan" \
    && pass "pipelines: [kfold, kfold-b]: each fold joins its seed's member, kfold's and kfold-b's models, in that order; kfold is not retrained" \
    || fail "kfold-mix2: $n_ordered of 4 folds joined in order; $(grep 'ser-model' <<<"$plan" | head -n 12)"
mkdir -p "$W/pipelines/mix-of-ens" && cp "$W/pipelines/kfold"/*.yaml "$W/pipelines/mix-of-ens/"
printf 'seeds: [1]\npipelines: [kfold-ens]\n' >"$W/pipelines/mix-of-ens/ensemble.yaml"
out=$(mk -n P=mix-of-ens train 2>&1) && fail "an ensemble of ensembles was accepted" \
    || { grep -q 'kfold-ens is an ensemble itself' <<<"$out" && pass "pipelines: naming an ensemble is refused, by name" \
    || fail "pipelines: [kfold-ens]: $out"; }
# The deployment pipeline as an ensemble: members on every clip, one checkpoint for predict,
# export and ser-infer.
cp -r "$W/pipelines/kfold-deploy" "$W/pipelines/deploy-ens"
echo 'seeds: [1, 2]' >"$W/pipelines/deploy-ens/ensemble.yaml"
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
echo 'seeds: [1, 2, 3]' >"$W/pipelines/deploy-ens/ensemble.yaml"
plan=$(mk -n P=deploy-ens eval)
trains=$(grep 'ser-model train' <<<"$plan" || true)
[ "$(wc -l <<<"$trains")" = 1 ] && grep -q -- '--seed 3 .*members/seed-3' <<<"$trains" \
    && [ "$(grep -c 'ser-model ensemble' <<<"$plan")" = 1 ] \
    && pass "a seed added to ensemble.yaml trains that member alone, then joins the ensemble" \
    || fail "make -n after adding a seed: $plan"

echo "== labels of your own, end to end"
# A manifest gives three made-up labels to part of the synthetic corpus; make extracts, splits,
# trains, predicts and reports on them, and predict and the service answer with them.
mkdir -p "$W/pipelines/own"
cp "$C"/*.yaml "$W/pipelines/own/"
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
out=$(make -s --no-print-directory data DATA="$W/fetch" RAVDESS_URL=http://127.0.0.1:9/none.zip 2>&1) && fail "make data offline succeeded" \
    || { grep -q "RAVDESS_ARCHIVE=" <<<"$out" && pass "make data offline stops and says what to do" || fail "make data offline: no advice: $out"; }
echo "not a zip" >"$W/bad.zip"
out=$(make -s --no-print-directory data DATA="$W/fetch" RAVDESS_URL="file://$W/bad.zip" 2>&1) && fail "a damaged download was accepted" \
    || { grep -q "MD5" <<<"$out" && [ ! -e "$W/fetch/downloads/Audio_Speech_Actors_01-24.zip" ] && [ ! -e "$W/fetch/raw/ravdess" ] \
         && pass "make data refuses a download with the wrong checksum and keeps nothing" || fail "checksum: $out"; }
mkdir -p "$W/zip/Actor_01" && cp "$(find "$W/data/raw/demo/Actor_01" -name '*.wav' -print -quit)" "$W/zip/Actor_01/"
if (cd "$W/zip" && "$PY" -c 'import shutil; shutil.make_archive("../good", "zip", ".")') 2>/dev/null \
    && command -v unzip >/dev/null; then
    md5=$(md5sum "$W/good.zip" | cut -d' ' -f1)
    make -s --no-print-directory data DATA="$W/fetch" RAVDESS_URL="file://$W/good.zip" RAVDESS_MD5="$md5" >/dev/null 2>&1 \
        && [ "$(find "$W/fetch/raw/ravdess/Actor_01" -name '*.wav' | wc -l)" = 1 ] \
        && pass "make data downloads, checks the MD5 and unpacks" || fail "make data with a good download"
else
    echo "SKIPPED: the good-download check needs $PY (to write a zip) and unzip"
fi

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
