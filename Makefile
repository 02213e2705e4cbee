# ser: stage rules (targets are files), plus build / test / bench / clean. `make help` lists them.
# P picks the pipeline: pipelines/$(P)/<stage>.yaml hold each stage's params.
P ?= demo
CARGO ?= cargo
# Stage binaries come from this cargo profile (make test uses test-release, which it built).
PROFILE ?= release
BIN := target/$(PROFILE)
# Where pipelines, data and results live (tests point these at temporary folders).
PIPELINES ?= pipelines
DATA ?= data
ARTIFACTS ?= artifacts
# SCHEDULER=slurm runs feature extraction and the search as Slurm array jobs of SHARDS tasks,
# CPUS_PER_TASK cores each, plus a merge job (scripts/slurm-array); local runs them here.
SCHEDULER ?= local
SHARDS ?= 4
CPUS_PER_TASK ?= 1
JOBS ?= 1

CONF := $(PIPELINES)/$(P)
RAW_demo := $(DATA)/raw/demo
RAW := $(or $(RAW_$(P)),$(DATA)/raw/ravdess)
RAW_DEP := $(if $(RAW_$(P)),$(RAW)/.done)
# MANIFEST=corpus.csv (path,label,speaker[,split]) extracts your own corpus with its own labels
# instead of the folder of RAW: make eval P=<name> MANIFEST=...
MANIFEST ?=
SOURCE := $(if $(MANIFEST),--manifest $(MANIFEST),--in $(RAW))
SOURCE_DEP := $(if $(MANIFEST),$(MANIFEST),$(RAW_DEP))
FEAT_DIR := $(DATA)/features/$(P)
FEAT := $(FEAT_DIR)/features.parquet
SPLITS := $(FEAT_DIR)/splits.parquet
OUT := $(ARTIFACTS)/$(P)
MODEL := $(OUT)/model
PRED := $(OUT)/predictions/predictions.parquet
EVAL := $(OUT)/eval
TUNE := $(OUT)/tune
TUNED := $(OUT)/tuned

# A split of several folds (kind: speaker_kfold, or speaker_folds with one `- [...]` line per
# fold, in split.yaml) trains, predicts and scores every fold: $(OUT)/folds/<i>/model and
# .../predictions; eval reports each fold and their mean and spread.
SPLIT_KIND := $(shell sed -n 's/^kind: *\([a-z_]*\).*/\1/p' $(CONF)/split.yaml 2>/dev/null)
ifeq ($(SPLIT_KIND),speaker_kfold)
K := $(shell sed -n 's/^k: *\([0-9]*\).*/\1/p' $(CONF)/split.yaml)
else ifeq ($(SPLIT_KIND),speaker_folds)
K := $(shell grep -c '^ *- *\[' $(CONF)/split.yaml)
endif
ifneq ($(K),)
FOLDS := $(shell seq 0 $$(($(K) - 1)))
MODELS := $(foreach f,$(FOLDS),$(OUT)/folds/$(f)/model/model.json)
PREDS := $(foreach f,$(FOLDS),$(OUT)/folds/$(f)/predictions/predictions.parquet)
ONNX := $(foreach f,$(FOLDS),$(OUT)/folds/$(f)/model.onnx)
else
MODELS := $(MODEL)/model.json
PREDS := $(PRED)
ONNX := $(OUT)/model.onnx
endif

# A deployment pipeline (split.yaml `kind: all`): every clip trains, a fixed number of epochs
# (model.yaml `early_stopping_on: none`), so it has no test part of its own. Its eval reports the
# cross-validated figure it stands on: the folds of the pipeline `cross_validation:` names (made
# there first, by that pipeline's own rules), with this checkpoint's curves and provenance.
CV_OF := $(shell sed -n 's/^cross_validation: *\([A-Za-z0-9_.-]*\).*/\1/p' $(CONF)/split.yaml 2>/dev/null)
ifneq ($(CV_OF),)
CV_EVAL := $(ARTIFACTS)/$(CV_OF)/eval/metrics.json
PREDS := $(CV_EVAL)
endif

# An ensemble pipeline names its members' seeds in ensemble.yaml, one line: `seeds: [42, 43, 44]`,
# and may add other pipelines' checkpoints as members, one line: `pipelines: [ravdess-emobox-trim]`.
SEEDS := $(shell sed -n 's/^seeds: *\[\([0-9, ]*\)\].*/\1/p' $(CONF)/ensemble.yaml 2>/dev/null | tr ',' ' ')
ENSEMBLE_PIPELINES := $(shell sed -n 's/^pipelines: *\[\([A-Za-z0-9_., -]*\)\].*/\1/p' $(CONF)/ensemble.yaml 2>/dev/null | tr ',' ' ')
$(foreach p,$(ENSEMBLE_PIPELINES),$(if $(wildcard $(PIPELINES)/$(p)/ensemble.yaml),\
  $(error ensemble.yaml: pipelines: $(p) is an ensemble itself; name single-model pipelines),))

ifeq ($(filter $(SCHEDULER),local slurm),)
$(error SCHEDULER=$(SCHEDULER): use local or slurm)
endif

.DELETE_ON_ERROR:
.PHONY: help build test test-cargo test-pipeline test-slurm test-browser demo ravdess features split tune tuned train predict eval infer onnx data clean clean-all bench bench-features bench-train bench-infer robustness

help: ## list targets (P=<pipeline> picks pipelines/<pipeline>/, default demo)
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18

build: ## build every stage binary (PROFILE, default release)
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

test: test-cargo test-pipeline test-slurm test-browser ## run all tests: cargo's, the pipeline's make rules, Slurm array jobs, the live page in Chromium

test-cargo: ## the crates' tests (optimised profile: training is involved)
	$(CARGO) test --workspace --profile test-release

test-browser: ## the live page in headless Chromium (fake microphone) vs ser-infer stream (installs chromium when it can)
	tests/browser.sh

test-pipeline: ## make-level tests on a tiny pipeline: re-run rules, two runs identical, Python-written features
	tests/pipeline.sh

test-slurm: ## the demo's features and search as Slurm array jobs vs one machine (installs a local Slurm if it can)
	tests/slurm.sh

demo: ## the main job on a synthetic corpus, no download: features, split, train, predict, report
	$(MAKE) P=demo eval
	@echo "report: $(ARTIFACTS)/demo/eval/report.html (and report.md)"

ravdess: ## RAVDESS end to end (after make data): reference hyperparameters, then search + final model
	$(MAKE) P=ravdess eval tuned

$(DATA)/raw/demo/.done: $(BIN)/ser-features
	$(BIN)/ser-features synth --out $(DATA)/raw/demo --speakers 8 --seed 7
	touch $@

data: ## RAVDESS into data/raw/ravdess: RAVDESS_DIR (a folder), RAVDESS_ARCHIVE (.tar.xz/.zip), or download
	DATA=$(DATA) scripts/fetch-ravdess

features: $(FEAT) ## extract the feature table of pipeline P (SCHEDULER=slurm SHARDS=n: as an array job)
$(FEAT): $(CONF)/features.yaml $(BIN)/ser-features $(SOURCE_DEP)
	@test -n "$(MANIFEST)" || test -d $(RAW) || { echo "$(RAW) is missing: run make data (see README), or give MANIFEST=corpus.csv"; exit 1; }
ifeq ($(SCHEDULER),slurm)
	scripts/slurm-array --name features-$(P) --shards $(SHARDS) --cpus $(CPUS_PER_TASK) --logs $(FEAT_DIR)/slurm \
	  --done '$(FEAT_DIR)/parts/part-{i}-of-$(SHARDS).parquet' --after '$^' \
	  --task '$(BIN)/ser-features extract --quiet --config $< $(SOURCE) --shard env --out $(FEAT_DIR)/parts/part-$$SLURM_ARRAY_TASK_ID-of-$(SHARDS).parquet' \
	  --merge '$(BIN)/ser-features merge --out $@ $(FEAT_DIR)/parts/part-*-of-$(SHARDS).parquet'
else
	$(BIN)/ser-features extract --config $< $(SOURCE) --out $@
endif

split: $(SPLITS) ## assign clips to train/val/test
$(SPLITS): $(CONF)/split.yaml $(FEAT) $(BIN)/ser-features
	$(BIN)/ser-features split --config $< --features $(FEAT) --out $@

tune: $(TUNE)/best.yaml ## random search (tune.yaml over model.yaml); JOBS=N trials at once, or SCHEDULER=slurm SHARDS=n
# Finished trials are kept in $(TUNE)/trials/: an interrupted search resumes where it stopped.
$(TUNE)/best.yaml: $(CONF)/tune.yaml $(CONF)/model.yaml $(FEAT) $(SPLITS) $(BIN)/ser-tune
ifeq ($(SCHEDULER),slurm)
	scripts/slurm-array --name tune-$(P) --shards $(SHARDS) --cpus $(CPUS_PER_TASK) --logs $(TUNE)/slurm \
	  --task '$(BIN)/ser-tune run --quiet --config $< --base $(CONF)/model.yaml --features $(FEAT) --splits $(SPLITS) --out $(TUNE) --shard env' \
	  --merge '$(BIN)/ser-tune merge --out $(TUNE) $(TUNE)'
else
	$(BIN)/ser-tune run --config $< --base $(CONF)/model.yaml --features $(FEAT) --splits $(SPLITS) \
	  --out $(TUNE) --jobs $(JOBS)
endif

train: $(MODELS) ## train the network (checkpoint in artifacts/P/model, or artifacts/P/folds/<i>/model)
# model.json is written after the weights: it stands for the whole checkpoint. A training that was
# stopped (Ctrl-C, a kill, a lost node) goes on from its last finished epoch when make runs again,
# unless its config or data changed meanwhile; a finished checkpoint make retrains (its config,
# data or binary changed) trains from the first epoch (--resume-if-interrupted).
ifeq ($(SEEDS),)
$(MODEL)/model.json: $(CONF)/model.yaml $(FEAT) $(SPLITS) $(BIN)/ser-model
	$(BIN)/ser-model train --config $< --features $(FEAT) --splits $(SPLITS) --out $(MODEL) --resume-if-interrupted

$(OUT)/folds/%/model/model.json: $(CONF)/model.yaml $(FEAT) $(SPLITS) $(BIN)/ser-model
	$(BIN)/ser-model train --config $< --features $(FEAT) --splits $(SPLITS) --fold $* --out $(@D) --resume-if-interrupted
else
# An ensemble (ensemble.yaml): model.yaml trained once per seed into members/seed-<s>, then the
# checkpoint (the same fold's) of each pipeline in `pipelines:`, trained by that pipeline's own
# rules (it must split as this one does), all joined into the checkpoint every later rule reads.
# That pipeline's make is `$$(MAKE)` in the rule, so it runs as a recursive make: -n, -q and -j
# reach it (`make -n` lists its training too).
member_dir = $(if $(FOLDS),$(OUT)/folds/$(1)/members/seed-$(2),$(OUT)/members/seed-$(2))
other_member = $(if $(FOLDS),$(ARTIFACTS)/$(2)/folds/$(1)/model,$(ARTIFACTS)/$(2)/model)
members_of = $(foreach s,$(SEEDS),$(call member_dir,$(1),$(s))) \
  $(foreach p,$(ENSEMBLE_PIPELINES),$(call other_member,$(1),$(p)))
define member_rule
$(call member_dir,$(1),$(2))/model.json: $(CONF)/model.yaml $(FEAT) $(SPLITS) $(BIN)/ser-model
	$(BIN)/ser-model train --config $$< --features $(FEAT) --splits $(SPLITS) --fold $(1) --seed $(2) --out $$(@D) --resume-if-interrupted
endef
$(foreach f,$(or $(FOLDS),0),$(foreach s,$(SEEDS),$(eval $(call member_rule,$(f),$(s)))))
define other_pipeline_rule
$(foreach f,$(or $(FOLDS),0),$(call other_member,$(f),$(1))/model.json) &: $(wildcard $(PIPELINES)/$(1)/*.yaml)
	$$(MAKE) P=$(1) train
endef
$(foreach p,$(ENSEMBLE_PIPELINES),$(eval $(call other_pipeline_rule,$(p))))

ifeq ($(FOLDS),)
$(MODEL)/model.json: $(CONF)/ensemble.yaml $(addsuffix /model.json,$(call members_of,0)) $(BIN)/ser-model
	$(BIN)/ser-model ensemble --config $< --out $(MODEL) $(call members_of,0)
else
$(OUT)/folds/%/model/model.json: $(CONF)/ensemble.yaml $$(addsuffix /model.json,$$(call members_of,$$*)) $(BIN)/ser-model
	$(BIN)/ser-model ensemble --config $< --out $(@D) $(call members_of,$*)
endif
endif

predict: $(PREDS) ## predict the test part with the checkpoint (each fold's with its own)
$(PRED): $(MODEL)/model.json $(FEAT) $(SPLITS) $(BIN)/ser-model
	$(BIN)/ser-model predict --checkpoint $(MODEL) --features $(FEAT) --splits $(SPLITS) --part test --out $@

tuned: $(TUNED)/eval/metrics.json ## the search's final model: train tune/final.yaml, predict, evaluate (artifacts/P/tuned)
$(TUNED)/model/model.json: $(TUNE)/best.yaml $(FEAT) $(SPLITS) $(BIN)/ser-model
	$(BIN)/ser-model train --config $(TUNE)/final.yaml --features $(FEAT) --splits $(SPLITS) --out $(@D) --resume-if-interrupted

$(TUNED)/predictions/predictions.parquet: $(TUNED)/model/model.json $(FEAT) $(SPLITS) $(BIN)/ser-model
	$(BIN)/ser-model predict --checkpoint $(<D) --features $(FEAT) --splits $(SPLITS) --part test --out $@

$(TUNED)/eval/metrics.json: $(CONF)/eval.yaml $(TUNED)/predictions/predictions.parquet $(TUNED)/model/model.json $(BIN)/ser-eval
	$(BIN)/ser-eval report --config $< --predictions $(TUNED)/predictions/predictions.parquet --checkpoint $(TUNED)/model \
	  --out $(@D) --title "Speech emotion recognition: pipeline $(P), searched hyperparameters, test part" \
	  --summary $(TUNED)/summary.json --pipeline $(P)

# The robustness suite: the test part heard through each channel change of CHANNELS (extract
# --channel: the same clips, no augmented copies), predicted by the same checkpoints (each fold's
# by its own), scored as eval, and one table beside the clean evaluation. PART=val scores the
# validation part instead, clean included (in robustness-val/), so that a recipe can be chosen
# under channel changes without looking at the test actors. lowpass_8000hz is a recording chain at
# 16 kHz, as most emotional speech corpora are.
CHANNELS ?= telephone lowpass_5500hz noise_20db noise_10db noise_5db gain_-20db reverb_0.5s trim_30db lowpass_8000hz
PART ?= test
ifeq ($(filter $(PART),test val),)
$(error PART=$(PART): use test or val)
endif
ROBUST := $(OUT)/robustness$(if $(filter val,$(PART)),-val)
ROBUST_FOLDS := $(or $(FOLDS),0)
checkpoint_of = $(if $(FOLDS),$(OUT)/folds/$(1)/model,$(MODEL))
robust_pred = $(ROBUST)/$(1)/folds/$(2)/predictions.parquet
robust_preds = $(foreach f,$(ROBUST_FOLDS),$(call robust_pred,$(1),$(f)))
# The clean figures the table starts from: eval's for the test part, the clean table's val part.
ROBUST_CLEAN := $(if $(filter val,$(PART)),$(ROBUST)/clean/eval,$(EVAL))

ifeq ($(CV_OF),)
robustness: $(ROBUST)/robustness.md ## the test part (PART=val: the validation part) through channel changes (CHANNELS: telephone, noise, gain, reverb, trim...), one table
else
robustness:
	@echo "$(P) trains on every clip and has no test part; its robustness is that of its folds: make robustness P=$(CV_OF)"; exit 2
endif
$(FEAT_DIR)/channels/%/features.parquet: $(CONF)/features.yaml $(BIN)/ser-features $(SOURCE_DEP)
	$(BIN)/ser-features extract --quiet --config $< $(SOURCE) --channel $* --out $@

define robust_eval
	$(foreach f,$(ROBUST_FOLDS),$(BIN)/ser-model predict --checkpoint $(call checkpoint_of,$(f)) --features $(1) --splits $(SPLITS) \
	  --fold $(f) --part $(PART) --out $(call robust_pred,$(2),$(f)) &&) true
	$(BIN)/ser-eval report --config $(CONF)/eval.yaml --predictions $(call robust_preds,$(2)) --out $(ROBUST)/$(2)/eval \
	  --title "Speech emotion recognition: pipeline $(P), $(PART) part $(3)"
endef
$(ROBUST)/%/eval/metrics.json: $(FEAT_DIR)/channels/%/features.parquet $(SPLITS) $(MODELS) $(CONF)/eval.yaml $(BIN)/ser-model $(BIN)/ser-eval
	$(call robust_eval,$<,$*,through $*)

$(ROBUST)/clean/eval/metrics.json: $(FEAT) $(SPLITS) $(MODELS) $(CONF)/eval.yaml $(BIN)/ser-model $(BIN)/ser-eval
	$(call robust_eval,$<,clean,as recorded)

$(ROBUST)/robustness.md: $(ROBUST_CLEAN)/metrics.json $(foreach c,$(CHANNELS),$(ROBUST)/$(c)/eval/metrics.json) $(BIN)/ser-eval
	$(BIN)/ser-eval robustness --clean $(ROBUST_CLEAN) --out $(ROBUST) $(foreach c,$(CHANNELS),$(c)=$(ROBUST)/$(c)/eval)

infer: $(BIN)/ser-infer ## emotions for new audio: make infer P=ravdess IN="clip.wav folder/" (infer.yaml's defaults)
	@test -n "$(IN)" || { echo "give the audio: make infer P=$(P) IN=\"file.wav folder/ 'glob/*.wav'\""; exit 2; }
	@test -f $(MODEL)/model.json || { echo "$(MODEL) has no checkpoint: run make train P=$(P) first"; exit 2; }
	$(BIN)/ser-infer --config $(CONF)/infer.yaml predict --checkpoint $(MODEL) $(IN)

onnx: $(ONNX) ## the checkpoint as one ONNX model (opset 17): raw features in, probabilities out (each fold's)
$(OUT)/model.onnx: $(MODEL)/model.json $(BIN)/ser-model
	$(BIN)/ser-model export --checkpoint $(MODEL) --out $@

$(OUT)/folds/%/model.onnx: $(OUT)/folds/%/model/model.json $(BIN)/ser-model
	$(BIN)/ser-model export --checkpoint $(<D) --out $@


$(OUT)/folds/%/predictions/predictions.parquet: $(OUT)/folds/%/model/model.json $(FEAT) $(SPLITS) $(BIN)/ser-model
	$(BIN)/ser-model predict --checkpoint $(<D) --features $(FEAT) --splits $(SPLITS) --fold $* --part test --out $@

eval: $(EVAL)/metrics.json ## metrics, confusion matrix, curves and report of the predictions (of every fold)
# metrics.json is written last: its presence means the whole report is there. The provenance
# comes from the first (or only) checkpoint; the curves are every trained run's (each fold's
# model, or each member of each fold's ensemble), drawn together.
ifeq ($(SEEDS),)
RUNS := $(patsubst %/model.json,%,$(MODELS))
else
RUNS := $(foreach f,$(or $(FOLDS),0),$(call members_of,$(f)))
endif
HISTORIES := $(addsuffix /history.csv,$(RUNS))
ifeq ($(CV_OF),)
$(EVAL)/metrics.json: $(CONF)/eval.yaml $(PREDS) $(MODELS) $(BIN)/ser-eval
	$(BIN)/ser-eval report --config $< --predictions $(PREDS) --checkpoint $(dir $(firstword $(MODELS))) --out $(EVAL) \
	  --history $(HISTORIES) --title "Speech emotion recognition: pipeline $(P), test part" --summary $(OUT)/summary.json --pipeline $(P)
else
$(CV_EVAL): $(wildcard $(PIPELINES)/$(CV_OF)/*.yaml)
	$(MAKE) P=$(CV_OF) eval

$(EVAL)/metrics.json: $(CONF)/eval.yaml $(CV_EVAL) $(MODELS) $(BIN)/ser-eval
	$(BIN)/ser-eval report --config $< --checkpoint $(MODEL) --history $(HISTORIES) --out $(EVAL) --summary $(OUT)/summary.json --pipeline $(P) \
	  --predictions $$(ls $(ARTIFACTS)/$(CV_OF)/folds/*/predictions/predictions.parquet 2>/dev/null || echo $(ARTIFACTS)/$(CV_OF)/predictions/predictions.parquet) \
	  --title "Speech emotion recognition: pipeline $(P), trained on every clip; the figures are the cross-validation of $(CV_OF) it stands on"
endif

bench: bench-features bench-train bench-infer ## all side-by-side benchmarks against the Python reference

bench-features: ## feature extraction, ser vs librosa reference, all of RAVDESS (needs make data, peer venv)
	$(CARGO) bench -p ser-features --bench extract

bench-infer: ## one clip end to end vs the reference, batch throughput, stream real-time factor, HTTP load (needs make data)
	$(CARGO) bench -p ser-infer --bench latency

bench-train: ## seconds per training epoch, ser vs Keras reference, and 1-clip forward latency
	$(CARGO) bench -p ser-model --bench epoch

clean: ## remove pipeline P's features and artifacts (and, for demo, its synthetic corpus); nothing else
	rm -rf $(FEAT_DIR) $(OUT) $(RAW_DEP:%/.done=%)

clean-all: ## remove every pipeline's features and artifacts, benchmarks and the synthetic corpus (keeps data/raw)
	@echo "removing $(DATA)/features, $(ARTIFACTS)/*/ and $(DATA)/raw/demo"
	rm -rf $(DATA)/features $(ARTIFACTS)/*/ $(DATA)/raw/demo
