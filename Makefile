# flaxgpt: the two commands a new user runs are `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN    ?= runs/demo
SWEEP  ?= experiments/sweeps/micro_lr.py

.PHONY: setup setup-tpu demo test lint sweep preflight bench bench-train bench-ingest bench-decode bench-privacy clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/python -c "from flaxgpt.data.tokenizer import get_tokenizer; assert get_tokenizer('gpt2').encode('Hello world') == [15496, 995]"
	$(BIN)/python -m flaxgpt.ingest.privacy.namesets  # the name sets derived from names-dataset once (~15 s), cached
	touch $(STAMP)

# Ingest the bundled example persona (extract, scrub, dedup, filter, tokenize), check no planted secret
# survived, pretrain the micro model on it, fine-tune it on chat conversations (SFT), print samples,
# then run the Constitutional AI pipeline (revise, SL-CAI, labels, PM, PPO) and compare before/after,
# and end with the evaluation report of every stage side by side.
demo: setup
	$(BIN)/flaxgpt ingest examples/persona/sources.py --out $(RUN)/data/persona
	$(BIN)/flaxgpt audit $(RUN)/data/persona --canaries examples/persona/canaries.txt
	$(BIN)/flaxgpt train experiments/micro.py run.dir=$(RUN)/micro data.sources.personal.path=$(RUN)/data/persona
	$(BIN)/flaxgpt tokenize-chat examples/chat/persona_chat.jsonl --format openai --out $(RUN)/data/chat
	$(BIN)/flaxgpt train experiments/sft_micro.py run.dir=$(RUN)/sft_micro data.sources.chat.path=$(RUN)/data/chat \
		train.init_from=$(RUN)/micro train.steps=150
	$(BIN)/flaxgpt sample $(RUN)/micro --prompt "Ines Halvorsen" --n 3 --max-new-tokens 40 --temperature 0.8 --seed 0
	$(BIN)/flaxgpt run experiments/cai_micro.py dir=$(RUN)/cai base=$(RUN)/micro sft.run_dir=$(RUN)/sft_micro \
		"sft.overrides=('data.sources.chat.path=$(RUN)/data/chat', 'train.steps=150')"
	$(BIN)/flaxgpt eval $(RUN)/micro $(RUN)/sft_micro $(RUN)/cai/sft_cai $(RUN)/cai/ppo --names base,sft,sl_cai,rl_cai \
		--suite all --limit 16 --data $(RUN)/data/persona --facts examples/persona/facts.jsonl \
		--red-team examples/cai/red_team_test.jsonl --helpful examples/cai/helpful.jsonl \
		--revisions $(RUN)/cai/revise/history.jsonl --comparisons examples/cai/comparisons_test.jsonl \
		--comparisons examples/cai/choices_test.jsonl --baseline $(RUN)/sft_micro --judge $(RUN)/sft_micro \
		--owner-config examples/persona/sources.py --out $(RUN)/eval
	@echo "pretraining run: $(RUN)/micro   chat fine-tune: $(RUN)/sft_micro   (inspect: $(BIN)/flaxgpt info $(RUN)/micro)"
	@echo "Constitutional AI: $(RUN)/cai (revise/, label/, sft_cai/, pm/, ppo/, evaluate/report.md)"
	@echo "evaluation report: $(RUN)/eval/report.html (and report.md, report.json)"
	@echo "chat with it:    $(BIN)/flaxgpt chat $(RUN)/cai/ppo"

lint: setup
	$(BIN)/ruff check .

# One experiment over a grid of overrides (experiments/sweeps/), one run after another, finished runs skipped ->
# runs/sweeps/NAME/results.md, results.csv, sweep.png. The bundled sweeps train on the demo's ingest, made first if missing.
sweep: setup $(RUN)/data/persona/mixture.json
	$(BIN)/flaxgpt sweep $(SWEEP)

$(RUN)/data/persona/mixture.json: | setup
	$(BIN)/flaxgpt ingest examples/persona/sources.py --out $(RUN)/data/persona

# Tests also compare against HuggingFace transformers (PyTorch CPU): installed for tests only, never for users.
$(VENV)/.test-installed: tests/requirements.txt $(STAMP)
	$(BIN)/pip install --quiet -r tests/requirements.txt
	touch $@

# Compiling for TPUs on this machine (`flaxgpt preflight`) needs libtpu, kept out of $(VENV): with it installed, every
# JAX start-up probes for a TPU (and libtpu prints warnings). Its own environment, the same pinned set plus jax[tpu].
TPU_VENV  := .venv-tpu
TPU_STAMP := $(TPU_VENV)/.installed
JAX_PIN   := $(shell sed -n 's/^jax==//p' requirements.lock)

setup-tpu: $(TPU_STAMP)

$(TPU_STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(TPU_VENV)
	$(TPU_VENV)/bin/pip install --quiet --upgrade pip
	$(TPU_VENV)/bin/pip install --quiet -r requirements.lock "jax[tpu]==$(JAX_PIN)"
	$(TPU_VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

# Every experiment config on its run.hardware: TPU configs compiled for their slice (minutes each on 2 cores).
preflight: $(TPU_STAMP)
	$(TPU_VENV)/bin/flaxgpt preflight experiments/*.py

test: lint $(VENV)/.test-installed $(TPU_STAMP)
	$(BIN)/pytest -q

bench: bench-train bench-ingest bench-decode bench-privacy

# Training throughput against HuggingFace transformers' PyTorch GPT-2 (peer installed only here).
bench-train: setup
	$(BIN)/pip install --quiet -r bench/requirements.txt
	$(BIN)/python -m bench.train_bench

# flaxgpt ingest on a generated 200 MB text corpus: MB/s of input (target: 5 MB/s on 2 cores).
bench-ingest: setup
	$(BIN)/python -m bench.ingest_bench --mb 200

# Privacy: recall, false positives and precision per family of the scrubber on the labelled sentences in
# bench/privacy/*.jsonl, and false positives on the persona's sentences (targets: recall >= 0.97, FP <= 1%).
# bench/privacy/heldout/ was written blind (without seeing the rules or the other sets) and is never tuned on: its
# numbers are the honest ones. The sets beside it were written with the rules, or written blind and then tuned on.
bench-privacy: setup
	$(BIN)/python -m bench.privacy_bench
	@echo "== development sets 3-8 (each written blind, then tuned on; their own owners)"
	for d in dev3 dev4 dev5 dev6 dev7 dev8; do $(BIN)/python -m bench.privacy_bench --sets bench/privacy/$$d --no-persona --show 0; done
	@echo "== held-out sets (written without seeing the rules; never tuned on)"
	$(BIN)/python -m bench.privacy_bench --sets bench/privacy/heldout --no-persona --show 0

# Decoding: GPT-2 124M shapes, batch 1 and 8, flaxgpt f32/int8 against transformers' generate (same weights).
bench-decode: setup
	$(BIN)/pip install --quiet -r bench/requirements.txt
	$(BIN)/python -m bench.decode_bench

clean:
	rm -rf $(VENV) $(TPU_VENV) runs
