# gramviz: `make test` and `make demo` set everything up on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS := viz,app,notebooks,dev

.PHONY: setup test bench gallery constraints clean

setup: $(STAMP)

# (Re)install when the venv is missing or pyproject.toml / constraints.txt changed.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/bench_volume.py

# docs/gallery: every figure of gramviz.viz as offline HTML plus a PNG screenshot (needs Chromium)
gallery: $(STAMP)
	$(PY) docs/make_gallery.py

# Re-pin what CI installs after changing dependencies: make constraints
constraints: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -v '^gramviz' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache
