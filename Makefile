# gramviz: `make test` and `make demo` set everything up on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS := viz,app,notebooks,hf,dev

.PHONY: setup test demo lab bench bench-search bench-backbones bench-gram-official bench-train gallery train-default results results-temperature results-long results-aim results-bundled compare-example constraints mutations clean

setup: $(STAMP)

# (Re)install when the venv is missing or pyproject.toml / constraints.txt changed.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

# The browser demo (app.py) on the bundled model at http://127.0.0.1:7860; the gallery (data/gallery,
# 150 clips of the world's test split) is generated and embedded on first start and cached after.
# Options: make demo DEMO_ARGS="--port 7861 --gallery data/world/test"
DEMO_ARGS ?=
demo: $(STAMP)
	GRADIO_ANALYTICS_ENABLED=False $(PY) app.py $(DEMO_ARGS)

# JupyterLab on the teaching notebooks (notebooks/), in the project's environment
lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

# Do the tests catch deliberate bugs? tools/mutation_check.py applies each to a copy of the tree
mutations: $(STAMP)
	$(PY) tools/mutation_check.py

bench: $(STAMP)
	$(PY) benchmarks/bench_volume.py

# The gallery search against a cosine search and FAISS, 10k to 1M clips (about 10 GB of memory at 1M x 512)
bench-search: $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[bench]"
	$(PY) benchmarks/bench_search.py

# GRAM heads on frozen backbones: head training from stored features (batch 256 and 512, float32
# and bf16), the one-time backbone pass
bench-backbones: $(STAMP)
	$(PY) benchmarks/bench_backbones.py
	$(PY) benchmarks/bench_backbones.py --batch 512 --clips 8

# An official GRAM model at full size on the CPU (random weights): one 10 s clip, 1,000 captions,
# memory (needs about 15 GB of memory and of disk)
bench-gram-official: $(STAMP)
	$(PY) benchmarks/bench_gram_official.py

# Training throughput (clips/s): world-small from the decoded cache, and a ViT-B/32-sized model
bench-train: $(STAMP)
	$(PY) benchmarks/bench_train.py

# docs/gallery: every figure of gramviz.viz as offline HTML plus a PNG screenshot (needs Chromium)
gallery: $(STAMP)
	$(PY) docs/make_gallery.py

# The bundled default model: generate the world's train/val/test splits, train with
# configs/world-small.toml, evaluate on the test split, and copy the result into the package.
WORLD := data/world
$(WORLD)/%/captions.jsonl: | $(STAMP)
	$(PY) -m gramviz world --split $* --n $(if $(filter train,$*),4000,$(if $(filter val,$*),500,1000)) --out $(WORLD)/$* --quiet

train-default: $(STAMP) $(WORLD)/train/captions.jsonl $(WORLD)/val/captions.jsonl $(WORLD)/test/captions.jsonl
	rm -rf runs/world-small
	$(PY) -m gramviz train --config configs/world-small.toml
	$(PY) -m gramviz eval --model runs/world-small/final --data $(WORLD)/test --no-rerank --json --quiet > runs/world-small/final/eval_test.json
	rm -rf gramviz/models/bundled/world-small
	cp -r runs/world-small/final gramviz/models/bundled/world-small

# The loss comparison of docs/results.md (configs/study.toml: 5 variants x 3 seeds; configs/study-init.toml:
# GRAM started from a cosine model, 2 x 3 runs), evaluated on
# the val, test and compositional splits; finished runs are kept, so a second call only summarises.
results: $(STAMP) $(WORLD)/train/captions.jsonl $(WORLD)/val/captions.jsonl $(WORLD)/test/captions.jsonl $(WORLD)/compositional/captions.jsonl
	$(PY) -m gramviz experiment --config configs/study.toml
	$(PY) -m gramviz experiment --config configs/study-init.toml
	$(PY) docs/make_results.py --study runs/study --out docs/results
	cp runs/study-init/table.md docs/results/table-init.md
	cp runs/study-init/summary.json docs/results/summary-init.json

# GRAM's temperature and logit range (configs/study-temperature.toml: 5 variants x 3 seeds at the study's
# budget, about 45 minutes on 2 cores); finished runs are kept
results-temperature: $(STAMP) $(WORLD)/train/captions.jsonl $(WORLD)/val/captions.jsonl $(WORLD)/test/captions.jsonl $(WORLD)/compositional/captions.jsonl
	$(PY) -m gramviz experiment --config configs/study-temperature.toml
	mkdir -p docs/results
	cp runs/study-temperature/table.md docs/results/table-temperature.md
	cp runs/study-temperature/summary.json docs/results/summary-temperature.json

# The fair long-budget comparison (configs/study-long.toml: 30 epochs, 6 variants x 3 seeds, about 3 hours
# on 2 cores; minutes on a CUDA GPU) and the search for a GRAM variant at cosine's level that also aligns video
# with audio (configs/study-aim.toml: 6 epochs, 6 x 3 runs, about 70 minutes). Each writes its table, summary
# and collapse curves to docs/results (notebook 03 reads the curves). Finished runs are kept; to summarise
# what is finished without training the rest: gramviz experiment --config configs/study-long.toml --finished
RESULTS_DATA := $(WORLD)/train/captions.jsonl $(WORLD)/val/captions.jsonl $(WORLD)/test/captions.jsonl $(WORLD)/compositional/captions.jsonl
results-long: $(STAMP) $(RESULTS_DATA)
	$(PY) -m gramviz experiment --config configs/study-long.toml
	$(PY) docs/make_results.py --study runs/study-long --out docs/results --name long

results-aim: $(STAMP) $(RESULTS_DATA)
	$(PY) -m gramviz experiment --config configs/study-aim.toml
	$(PY) docs/make_results.py --study runs/study-aim --out docs/results --name aim

# The bundled model's settings (configs/world-small.toml) with three seeds: its spread, and whether the
# warmup explains the long study's lower gram_va (configs/study-bundled.toml: 3 runs, about 45 minutes).
results-bundled: $(STAMP) $(RESULTS_DATA)
	$(PY) -m gramviz experiment --config configs/study-bundled.toml
	$(PY) docs/make_results.py --study runs/study-bundled --out docs/results --name bundled

# The Explore tab's built-in comparison (docs/results.md: GRAM against pairwise InfoNCE): the study's
# pairwise variant (configs/study.toml) for seed 0 only, with the options `gramviz experiment` gives it,
# written where `make results` keeps it: about 3 minutes of training on an idle 2-core machine; the first
# time the world's train and val splits are also generated and their clips decoded (several minutes more).
COMPARE_MODEL := runs/study/pairwise/seed-0
compare-example: $(STAMP) $(WORLD)/train/captions.jsonl $(WORLD)/val/captions.jsonl
	test -f $(COMPARE_MODEL)/final/model.safetensors || $(PY) -m gramviz train --config configs/study-base.toml \
		--set loss=pairwise --set epochs=6 --set warmup_steps=100 --set eval_every=0 --set seed=0 \
		--set out_dir=$(COMPARE_MODEL)
	@echo "compare it with the bundled model: make demo DEMO_ARGS=\"--compare $(COMPARE_MODEL)/final\" (or type the path in the Explore tab)"

# Re-pin what CI installs after changing dependencies: make constraints
constraints: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -v '^gramviz' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache
