# ser: stage rules (targets are files), plus build / test / clean. `make help` lists targets.
# P picks the pipeline: pipelines/$(P)/*.yaml hold each stage's params.
P ?= demo
CARGO ?= cargo
BIN := target/release
STAGES := $(BIN)/ser-features

RAW_demo := data/raw/demo
RAW_ravdess := data/raw/ravdess
RAW_ravdess-speaker := data/raw/ravdess
RAW := $(RAW_$(P))
FEAT_DIR := data/features/$(P)
FEAT := $(FEAT_DIR)/features.parquet
SPLITS := $(FEAT_DIR)/splits.parquet

.DELETE_ON_ERROR:
.PHONY: help build test demo features split data clean bench-features

help: ## list targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18

build: ## build every stage binary (release)
	$(CARGO) build --release --workspace --bins

# Binaries are prerequisites: a rebuilt stage re-runs. cargo decides whether anything changed.
$(BIN)/ser-%: FORCE
	@$(CARGO) build --release --quiet --bin ser-$*
FORCE:

test: ## run all tests (optimised profile: training is involved)
	$(CARGO) test --workspace --profile test-release

demo: ## the main job on a synthetic corpus: no download needed
	$(MAKE) P=demo features split
	$(BIN)/ser-features inspect $(FEAT)

data/raw/demo/.done: $(BIN)/ser-features
	$(BIN)/ser-features synth --out data/raw/demo --speakers 8 --seed 7
	touch $@

data: ## RAVDESS into data/raw/ravdess, from RAVDESS_DIR (a folder) or RAVDESS_ARCHIVE (.tar.xz/.zip)
ifdef RAVDESS_DIR
	mkdir -p data/raw && ln -sfn $(abspath $(RAVDESS_DIR)) data/raw/ravdess
else ifdef RAVDESS_ARCHIVE
	mkdir -p data/raw && case "$(RAVDESS_ARCHIVE)" in \
	  *.zip) mkdir -p data/raw/ravdess && unzip -q -o "$(RAVDESS_ARCHIVE)" -d data/raw/ravdess ;; \
	  *) tar xJf "$(RAVDESS_ARCHIVE)" -C data/raw ;; esac
else
	@test -d data/raw/ravdess || { echo "RAVDESS is not in data/raw/ravdess. Set RAVDESS_DIR=<folder with Actor_XX> or RAVDESS_ARCHIVE=<archive>, e.g. make data RAVDESS_ARCHIVE=../shared/data/ravdess-speech-48k.tar.xz"; exit 1; }
endif
	@n=$$(find -L data/raw/ravdess -name '*.wav' | wc -l); echo "data/raw/ravdess: $$n WAV files"; test $$n -gt 0

RAW_DEP_demo := data/raw/demo/.done
RAW_DEP := $(RAW_DEP_$(P))

features: $(FEAT) ## extract features for pipeline P
$(FEAT): pipelines/$(P)/features.yaml $(BIN)/ser-features $(RAW_DEP)
	@test -d $(RAW) || { echo "$(RAW) is missing: run make data (see README)"; exit 1; }
	$(BIN)/ser-features extract --config $< --in $(RAW) --out $@

split: $(SPLITS) ## assign clips to train/val/test for pipeline P
$(SPLITS): pipelines/$(P)/split.yaml $(FEAT) $(BIN)/ser-features
	$(BIN)/ser-features split --config $< --features $(FEAT) --out $@

bench-features: ## ser-features vs the Python reference on all of RAVDESS (needs make data and the peer venv)
	$(CARGO) run --release --quiet -p ser-features --bin bench-features -- --raw data/raw/ravdess --peer ../shared/peer

clean: ## remove generated data and artifacts (keeps data/raw)
	rm -rf data/features artifacts/*/ data/raw/demo
