# ser: stage rules (targets are files), plus build / test / bench / clean. `make help` lists them.
# P picks the pipeline, pipelines/$(P).yaml. ser-pipeline reads it (and the pipelines it extends
# or stands on) and writes the plan this Makefile includes: each stage's resolved params under
# $(ARTIFACTS)/$(P)/pipeline/ and the rules that make the pipeline's files. Make reads no YAML.
P ?= demo
CARGO ?= cargo
# Stage binaries come from this cargo profile (make test uses test-release, which it built).
PROFILE ?= release
BIN := target/$(PROFILE)
# Where pipelines, data and results live (tests point these at temporary folders).
PIPELINES ?= pipelines
DATA ?= data
ARTIFACTS ?= artifacts
# SCHEDULER=slurm runs feature extraction, the search and the trainings of a pipeline's folds and
# ensemble members as Slurm array jobs (SHARDS tasks for the first two, one task a training),
# CPUS_PER_TASK cores each (scripts/slurm-array); local runs them here.
SCHEDULER ?= local
SHARDS ?= 4
CPUS_PER_TASK ?= 1
JOBS ?= 1
# MANIFEST=corpus.csv (path,label,speaker[,split]) extracts your own corpus with its own labels
# instead of the pipeline's data: make eval P=<name> MANIFEST=...
MANIFEST ?=
# The robustness suite's channel changes, and the part it scores (test, or val to choose by).
CHANNELS ?= telephone lowpass_5500hz noise_20db noise_10db noise_5db gain_-20db reverb_0.5s trim_30db lowpass_8000hz
PART ?= test

ifeq ($(filter $(SCHEDULER),local slurm),)
$(error SCHEDULER=$(SCHEDULER): use local or slurm)
endif
ifeq ($(filter $(PART),test val),)
$(error PART=$(PART): use test or val)
endif

.DELETE_ON_ERROR:
.PHONY: help build test test-cargo test-pipeline test-slurm test-browser test-python demo ravdess model features split tune tuned train predict eval infer onnx data data-ravdess data-nemo clean clean-all bench bench-features bench-train bench-infer bench-python bench-soak robustness no-tune-section no-test-part

help: ## list targets (P=<pipeline> picks pipelines/<pipeline>.yaml, default demo)
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18

build: ## build every binary (PROFILE, default release)
	$(CARGO) build --profile $(PROFILE) --workspace --bins

# Binaries are prerequisites, so a rebuilt stage re-runs. A binary depends on the sources of its
# crate and of the crates it links; after a change cargo rebuilds what it must and the binary is
# touched, so `make -n` and `make -q` tell the truth about what would run. The crates it links
# are read from the Cargo.toml files (each `ser-* = { path = ... }` dependency above
# [dev-dependencies], followed to the end), so the crate graph is written once, by cargo's files.
path_deps = $(shell sed -n -e '/^\[dev-dependencies\]/q' -e 's/^\(ser-[a-z-]*\) = { path = .*/\1/p' crates/$(1)/Cargo.toml)
crates_of = $(sort $(1) $(foreach d,$(call path_deps,$(1)),$(call crates_of,$(d))))
sources = $(shell find $(foreach c,$(1),crates/$(c)/src crates/$(c)/Cargo.toml) -type f) Cargo.toml $(wildcard Cargo.lock)
.SECONDEXPANSION:
$(BIN)/ser-%: $$(call sources,$$(call crates_of,ser-$$*))
	$(CARGO) build --profile $(PROFILE) --quiet -p ser-$* --bin ser-$*
	@touch $@
# ser-infer holds the shipped model: the one folder under models/ with a model.json (its build.rs
# finds it the same way).
SHIPPED_MODEL := $(patsubst models/%/model.json,%,$(wildcard models/*/model.json))
$(BIN)/ser-infer: $(wildcard models/$(SHIPPED_MODEL)/model.*)

# The plan of pipeline P (ser-pipeline plan), remade when a pipeline file it was made from or the
# planner changes; make then starts again with it. Goals that run no pipeline do without it.
PLAN := $(ARTIFACTS)/$(P)/pipeline/plan.mk
NO_PLAN_GOALS := help build test test-cargo test-pipeline test-slurm test-browser test-python demo ravdess model data data-ravdess data-nemo clean-all bench bench-features bench-train bench-infer bench-python bench-soak
ifneq ($(filter-out $(NO_PLAN_GOALS),$(or $(MAKECMDGOALS),help)),)
include $(PLAN)
endif
$(PLAN): $(PIPELINES)/$(P).yaml $(BIN)/ser-pipeline
	$(BIN)/ser-pipeline --quiet plan $(P) --pipelines $(PIPELINES) --artifacts $(ARTIFACTS) --out $@ >/dev/null

test: test-cargo test-pipeline test-slurm test-browser test-python ## run all tests: cargo's, the pipeline's make rules, Slurm array jobs, the live page in Chromium, the Python package

test-cargo: ## the crates' tests (optimised profile: training is involved)
	$(CARGO) test --workspace --profile test-release

test-browser: ## the live page in headless Chromium (fake microphone) vs ser-infer stream (installs chromium when it can)
	tests/browser.sh

test-pipeline: ## make-level tests on a tiny pipeline: re-run rules, two runs identical, Python-written features
	tests/pipeline.sh

test-python: ## the Python package: its wheel (maturin) in a fresh venv, pytest against ser-infer and ser-features
	tests/python.sh

test-slurm: ## the demo's features, search and trainings as Slurm array jobs vs one machine (installs a local Slurm if it can)
	tests/slurm.sh

demo: ## the main job on a synthetic corpus, no download: features, split, train, predict, report
	$(MAKE) P=demo eval
	@echo "report: $(ARTIFACTS)/demo/eval/report.html (and report.md)"

ravdess: ## RAVDESS end to end (after make data): reference hyperparameters, then search + final model
	$(MAKE) P=ravdess eval tuned

model: ## retrain the shipped model (models/<name>) from its pipeline, P=<name>, and check it against its card (needs make data)
	$(MAKE) P=$(SHIPPED_MODEL) train
	scripts/ship-model $(ARTIFACTS)/$(SHIPPED_MODEL)/model models/$(SHIPPED_MODEL)

data: data-ravdess data-nemo ## both corpora into data/raw (see data-ravdess, data-nemo)

data-ravdess: ## RAVDESS into data/raw/ravdess: RAVDESS_DIR (a folder), RAVDESS_ARCHIVE (.tar.xz/.zip), or download
	DATA=$(DATA) scripts/fetch-ravdess

data-nemo: ## nEMO into data/raw/nemo: NEMO_DIR (a folder), NEMO_ARCHIVE (.tar.gz/.zip), or download
	DATA=$(DATA) scripts/fetch-nemo

features: $(PLAN_FEATURES) ## extract the feature table of pipeline P (SCHEDULER=slurm SHARDS=n: as an array job)

split: $(PLAN_SPLIT) ## assign clips to train/val/test (each fold's)

train: $(PLAN_TRAIN) ## train the network (checkpoint in artifacts/P/model, or artifacts/P/folds/<i>/model)

predict: $(PLAN_PREDICT) ## predict the test part with the checkpoint (each fold's with its own)

eval: $(PLAN_EVAL) ## metrics, confusion matrix, curves and report of the predictions (of every fold)

# The goals below have no recipe of their own (make -q answers for their files); where a pipeline
# lacks what a goal needs, the goal names a target that says so and fails.
tune: $(or $(PLAN_TUNE),no-tune-section) ## random search (P's tune section over its model); JOBS=N trials at once, or SCHEDULER=slurm SHARDS=n

tuned: $(or $(PLAN_TUNED),no-tune-section) ## the search's final model: train tune/final.yaml, predict, evaluate (artifacts/P/tuned)

no-tune-section:
	@echo "pipeline $(P) has no tune section"; exit 2

onnx: $(PLAN_ONNX) ## the checkpoint as one ONNX model (opset 17): raw features in, probabilities out (each fold's)

robustness: $(if $(PLAN_CROSS_VALIDATION),no-test-part,$(PLAN_ROBUSTNESS)) ## the test part (PART=val: the validation part) through channel changes (CHANNELS: telephone, noise, gain, reverb, trim...), one table

no-test-part:
	@echo "$(P) trains on every clip and has no test part; its robustness is that of its folds: make robustness P=$(PLAN_CROSS_VALIDATION)"; exit 2

infer: $(BIN)/ser-infer ## emotions for new audio: make infer P=ravdess IN="clip.wav folder/" (P's infer section, or ser-infer's defaults)
	@test -n "$(IN)" || { echo "give the audio: make infer P=$(P) IN=\"file.wav folder/ 'glob/*.wav'\""; exit 2; }
	@test -n "$(PLAN_CHECKPOINT)" || { echo "$(P) trains one checkpoint per fold; give one to ser-infer: $(BIN)/ser-infer predict --checkpoint $(ARTIFACTS)/$(P)/folds/0/model ..."; exit 2; }
	@test -f $(PLAN_CHECKPOINT)/model.json || { echo "$(PLAN_CHECKPOINT) has no checkpoint: run make train P=$(P) first"; exit 2; }
	$(BIN)/ser-infer $(if $(PLAN_INFER_CONFIG),--config $(PLAN_INFER_CONFIG)) predict --checkpoint $(PLAN_CHECKPOINT) $(IN)

bench: bench-features bench-train bench-infer ## all side-by-side benchmarks against the Python reference

bench-features: ## feature extraction, ser vs librosa reference, all of RAVDESS (needs make data, peer venv)
	$(CARGO) bench -p ser-features --bench extract

bench-infer: ## one clip end to end vs the reference, batch throughput, stream real-time factor, HTTP load (needs make data)
	$(CARGO) bench -p ser-infer --bench latency

bench-soak: ## the service under 100,000 mixed requests (16 clients): throughput, p99, unexpected answers, memory and descriptors; keys and logs on vs off
	$(CARGO) bench -p ser-infer --bench soak

bench-python: ## the Python package's predict vs ser-infer predict on the same 200 clips (needs make data; builds the wheel)
	tests/python.sh --bench

bench-train: ## seconds per training epoch, ser vs Keras reference, and 1-clip forward latency
	$(CARGO) bench -p ser-model --bench epoch

clean: ## remove pipeline P's features and artifacts (and, for demo, its synthetic corpus); nothing else
	rm -rf $(PLAN_CLEAN)

clean-all: ## remove every pipeline's features and artifacts, benchmarks and the synthetic corpus (keeps data/raw)
	@echo "removing $(DATA)/features, $(ARTIFACTS)/*/ and $(DATA)/raw/demo"
	rm -rf $(DATA)/features $(ARTIFACTS)/*/ $(DATA)/raw/demo
