# moat: two commands do everything on a fresh machine.
#   make run    build and start the gateway on config.toml (needs ANTHROPIC_API_KEY)
#   make test   every test, with -race (installs redis-server and npm packages if missing)

SHELL := /bin/bash
GO ?= go
BIN := bin/moat
CONFIG ?= config.toml
REDIS_PORT ?= 6391
REDIS_DIR := $(CURDIR)/.cache/redis
export GOFLAGS ?=

.PHONY: all build plugins modules as-sdk run demo test test-deps eval lint fuzz bench bench-peers soak redis-start redis-stop clean train-detector

all: build

## plugins: build the built-in plugins to wasm (host/internal/builtin/wasm/*.wasm, git-ignored; the tests check the committed modules against them)
plugins:
	@bash scripts/build-plugins.sh

## modules: rebuild the built-in plugins and write the committed, embedded modules (*.wasm.gz); commit what changes
modules: plugins
	@bash scripts/pack-modules.sh

## build: the moat binary (the built-ins' modules are committed and embedded: go install gives the same binary)
build:
	$(GO) build -o $(BIN) ./host/cmd/moat

## run: the gateway on config.toml at 127.0.0.1:8080
run: build
	@if [ -z "$$ANTHROPIC_API_KEY" ] && ! grep -qE '^[[:space:]]*api_key_file[[:space:]]*=' $(CONFIG); then \
	  echo "ANTHROPIC_API_KEY is not set: moat needs your Anthropic key to call Claude."; \
	  echo "  Set it for this shell:   export ANTHROPIC_API_KEY=...   (then: make run)"; \
	  echo "  or point upstream.api_key_file in $(CONFIG) at a file holding it."; \
	  echo "No key? 'make demo' runs moat against a built-in local stand-in for Claude."; \
	  exit 1; \
	fi
	$(BIN) serve --config $(CONFIG)

## demo: the gateway against a built-in local stand-in for Claude (no key needed)
demo: build
	$(BIN) demo --config $(CONFIG)

## as-sdk: install the AssemblyScript SDK's npm packages and build its example plugin
as-sdk:
	@cd sdk/assemblyscript && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error; } && npm run --silent build

## redis-start / redis-stop: a loopback redis-server for the tests (installed from Debian packages if missing)
redis-start:
	@bash scripts/redis.sh start $(REDIS_PORT) $(REDIS_DIR)
redis-stop:
	@bash scripts/redis.sh stop $(REDIS_DIR)

## test-deps: what the tests need beyond Go: npm packages for the TypeScript SDK and Claude Code tests, Chromium for the console test
test-deps:
	@if [ -f host/internal/e2e/tssdk/package-lock.json ]; then cd host/internal/e2e/tssdk && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error; }; fi
	@if [ -f host/internal/e2e/claudecode/package-lock.json ]; then cd host/internal/e2e/claudecode && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error; }; fi
	@if [ -f scripts/chromium.sh ]; then bash scripts/chromium.sh; fi

## eval: detection rates of injection-heuristics on the shared labeled sets
EVAL_DIR ?= ../shared/eval/injection
eval: build
	$(BIN) plugin eval injection-heuristics --attacks $(EVAL_DIR)/jailbreaks_inthewild.json \
	  --benign $(EVAL_DIR)/NotInject_one.json --benign $(EVAL_DIR)/NotInject_two.json --benign $(EVAL_DIR)/NotInject_three.json

## test: every test, with the race detector, against a real redis-server
test: plugins build as-sdk test-deps redis-start
	@set -o pipefail; status=0; \
	MOAT_TEST_REDIS_ADDR=127.0.0.1:$(REDIS_PORT) $(GO) test -race -count=1 -timeout 9m ./... || status=$$?; \
	(cd sdk && $(GO) test -race -count=1 ./...) || status=$$?; \
	bash scripts/redis.sh stop $(REDIS_DIR); exit $$status

## lint: go vet and staticcheck, on moat and on the SDK (its own module, also for wasip1)
lint: plugins
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	cd sdk && $(GO) vet ./... && GOOS=wasip1 GOARCH=wasm $(GO) vet ./...
	cd sdk && $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

## fuzz: every fuzz target for a bounded time (FUZZTIME each, default 30s)
FUZZTIME ?= 30s
fuzz: plugins
	@bash scripts/fuzz.sh $(FUZZTIME)

## bench: the side-by-side benchmark table (bare proxy, moat, moat + chains)
bench: build
	$(GO) run ./host/tools/bench/cmd/bench

## bench-peers: the same table with Portkey's gateway added
bench-peers: build
	$(GO) run ./host/tools/bench/cmd/bench --peers

## soak: a bounded soak run (SOAK=60s by default)
SOAK ?= 60s
soak: build redis-start
	@status=0; MOAT_TEST_REDIS_ADDR=127.0.0.1:$(REDIS_PORT) $(GO) run ./host/tools/soak/cmd/soak --duration $(SOAK) || status=$$?; \
	bash scripts/redis.sh stop $(REDIS_DIR); exit $$status

clean:
	rm -rf bin .cache host/internal/builtin/wasm/*.wasm sdk/assemblyscript/build sdk/assemblyscript/example/build

## train-detector: retrain the injection-classifier model (fixed seed; prints the files read, their SHA-256 and the held-out figures)
TRAIN_DIR ?= ../shared/eval/train
# The detector's data, besides $(TRAIN_DIR) (plugins/injclassifier/README.md,
# Training): extra training files, their weights, the calibration sets that
# set the threshold (never trained on), and the never-seen sets reported
# after it is fixed. Order within each list is the order of the output.
DETECTOR_DATA := plugins/injclassifier/traindata
DETECTOR_TEST := plugins/injclassifier/testdata
DETECTOR_EXTRA_ATTACKS := $(EVAL_DIR)/jailbreaks_inthewild.json $(DETECTOR_DATA)/own_attacks_injection.json
DETECTOR_EXTRA_BENIGN := $(foreach n,hardneg trigger mof attneg mof3 mof4 mof5 mof6,$(DETECTOR_DATA)/own_$(n)_benign.json)
DETECTOR_WEIGHTS := own_attacks_injection.json=3 own_mof4_benign.json=3 own_mof6_benign.json=2
DETECTOR_CALIB_BENIGN := $(foreach n,trigger mof attneg mof3,$(DETECTOR_DATA)/own_$(n)_calib.json) \
  $(EVAL_DIR)/NotInject_one.json $(foreach n,mof4 mof5 mof6 mof7,$(DETECTOR_DATA)/own_$(n)_calib.json)
DETECTOR_CALIB_SOURCES := xstest_benign.json deepset_benign.json deepset_injection.json
DETECTOR_REPORT_ATTACKS := $(foreach n,pretuning handwritten blind,$(DETECTOR_TEST)/$(n)_attacks.json) $(DETECTOR_TEST)/blind_hijack.json
DETECTOR_REPORT_BENIGN := $(foreach n,blind pretuning handwritten,$(DETECTOR_TEST)/$(n)_benign.json) \
  $(EVAL_DIR)/NotInject_two.json $(EVAL_DIR)/NotInject_three.json
train-detector:
	$(GO) run ./plugins/injclassifier/cmd/train-detector --train $(TRAIN_DIR) \
	  $(addprefix --extra-attacks ,$(DETECTOR_EXTRA_ATTACKS)) $(addprefix --extra-benign ,$(DETECTOR_EXTRA_BENIGN)) \
	  $(addprefix --weight ,$(DETECTOR_WEIGHTS)) --fuse 1 \
	  $(addprefix --calib-benign ,$(DETECTOR_CALIB_BENIGN)) --calib-attacks $(DETECTOR_DATA)/own_attacks_calib.json \
	  $(addprefix --calib-source ,$(DETECTOR_CALIB_SOURCES)) --target-fp 0.03 --out plugins/injclassifier/model.bin \
	  $(addprefix --report-attacks ,$(DETECTOR_REPORT_ATTACKS)) $(addprefix --report-benign ,$(DETECTOR_REPORT_BENIGN))
