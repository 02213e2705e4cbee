# ser: stage rules (targets are files), plus build / test / bench / clean. `make help` lists them.
# P picks the pipeline: pipelines/$(P)/<stage>.yaml hold each stage's params.
P ?= demo
CARGO ?= cargo
BIN := target/release

RAW_demo := data/raw/demo
RAW_DEP_demo := data/raw/demo/.done
RAW := $(or $(RAW_$(P)),data/raw/ravdess)
RAW_DEP := $(RAW_DEP_$(P))
FEAT := data/features/$(P)/features.parquet
SPLITS := data/features/$(P)/splits.parquet
MODEL := artifacts/$(P)/model
PRED := artifacts/$(P)/predictions/predictions.parquet
EVAL := artifacts/$(P)/eval
TUNE := artifacts/$(P)/tune
JOBS ?= 1

.DELETE_ON_ERROR:
.PHONY: help build test demo ravdess features split tune train predict eval data clean bench bench-features bench-train bench-infer FORCE

help: ## list targets (P=<pipeline> picks pipelines/<pipeline>/, default demo)
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18

build: ## build every stage binary (release)
	$(CARGO) build --release --workspace --bins

# Binaries are prerequisites, so a rebuilt stage re-runs; cargo decides whether anything changed
# and touches the binary only when it did.
$(BIN)/ser-%: FORCE
	@$(CARGO) build --release --quiet -p ser-$* --bin ser-$*
FORCE:

test: ## run all tests (optimised profile: training is involved)
	$(CARGO) test --workspace --profile test-release

demo: ## the main job on a synthetic corpus, no download: features, split, train, predict, report
	$(MAKE) P=demo eval
	@echo "report: artifacts/demo/eval/report.html (and report.md)"

ravdess: ## the reference experiment end to end on RAVDESS (after make data)
	$(MAKE) P=ravdess eval

data/raw/demo/.done: $(BIN)/ser-features
	$(BIN)/ser-features synth --out data/raw/demo --speakers 8 --seed 7
	touch $@

data: ## RAVDESS into data/raw/ravdess, from RAVDESS_DIR (a folder) or RAVDESS_ARCHIVE (.tar.xz or .zip)
ifdef RAVDESS_DIR
	mkdir -p data/raw && ln -sfn $(abspath $(RAVDESS_DIR)) data/raw/ravdess
else ifdef RAVDESS_ARCHIVE
	mkdir -p data/raw/ravdess && case "$(RAVDESS_ARCHIVE)" in \
	  *.zip) unzip -q -o "$(RAVDESS_ARCHIVE)" -d data/raw/ravdess ;; \
	  *) tar xJf "$(RAVDESS_ARCHIVE)" -C data/raw ;; esac
else
	@test -d data/raw/ravdess || { echo "RAVDESS is not in data/raw/ravdess: give RAVDESS_DIR=<folder with Actor_XX> or RAVDESS_ARCHIVE=<archive>, e.g. make data RAVDESS_ARCHIVE=../shared/data/ravdess-speech-48k.tar.xz"; exit 1; }
endif
	@n=$$(find -L data/raw/ravdess -name '*.wav' | wc -l); echo "data/raw/ravdess: $$n WAV files"; test $$n -gt 0

features: $(FEAT) ## extract the feature table of pipeline P
$(FEAT): pipelines/$(P)/features.yaml $(BIN)/ser-features $(RAW_DEP)
	@test -d $(RAW) || { echo "$(RAW) is missing: run make data (see README)"; exit 1; }
	$(BIN)/ser-features extract --config $< --in $(RAW) --out $@

split: $(SPLITS) ## assign clips to train/val/test
$(SPLITS): pipelines/$(P)/split.yaml $(FEAT) $(BIN)/ser-features
	$(BIN)/ser-features split --config $< --features $(FEAT) --out $@

tune: $(TUNE)/best.yaml ## random search (pipelines/P/tune.yaml over model.yaml); JOBS=N trials at once
# Finished trials are kept in $(TUNE)/trials/: an interrupted search resumes where it stopped.
$(TUNE)/best.yaml: pipelines/$(P)/tune.yaml pipelines/$(P)/model.yaml $(FEAT) $(SPLITS) $(BIN)/ser-tune
	$(BIN)/ser-tune run --config $< --base pipelines/$(P)/model.yaml --features $(FEAT) --splits $(SPLITS) \
	  --out $(TUNE) --jobs $(JOBS)

train: $(MODEL)/model.json ## train the network (checkpoint in artifacts/P/model)
$(MODEL)/model.safetensors $(MODEL)/model.json &: pipelines/$(P)/model.yaml $(FEAT) $(SPLITS) $(BIN)/ser-model
	$(BIN)/ser-model train --config $< --features $(FEAT) --splits $(SPLITS) --out $(MODEL)

predict: $(PRED) ## predict the test part with the checkpoint
$(PRED): $(MODEL)/model.json $(MODEL)/model.safetensors $(FEAT) $(SPLITS) $(BIN)/ser-model
	$(BIN)/ser-model predict --checkpoint $(MODEL) --features $(FEAT) --splits $(SPLITS) --part test --out $@

eval: $(EVAL)/metrics.json ## metrics, confusion matrix, curves and report of the predictions
# metrics.json is written last: its presence means the whole report is there.
$(EVAL)/metrics.json: pipelines/$(P)/eval.yaml $(PRED) $(MODEL)/model.json $(BIN)/ser-eval
	$(BIN)/ser-eval report --config $< --predictions $(PRED) --checkpoint $(MODEL) --out $(EVAL) \
	  --title "Speech emotion recognition: pipeline $(P), test part" --summary artifacts/$(P)/summary.json --pipeline $(P)

bench: bench-features bench-train bench-infer ## all side-by-side benchmarks against the Python reference

bench-features: ## feature extraction, ser vs librosa reference, all of RAVDESS (needs make data, peer venv)
	$(CARGO) bench -p ser-features --bench extract

bench-infer: ## one clip end to end vs the reference, batch throughput, stream real-time factor, HTTP load (needs make data)
	$(CARGO) bench -p ser-infer --bench latency

bench-train: ## seconds per training epoch, ser vs Keras reference, and 1-clip forward latency
	$(CARGO) bench -p ser-model --bench epoch

clean: ## remove generated features and artifacts (keeps data/raw, except the synthetic corpus)
	rm -rf data/features artifacts/*/ data/raw/demo
