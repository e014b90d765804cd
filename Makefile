# Two entry points: `make demo` (the whole pipeline on built-in synthetic data) and
# `make test` (the test suite). Both create .venv and install the package if needed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
MC     := $(VENV)/bin/mer-cache
DEMO   ?= data/demo
STAMP  := $(VENV)/.installed

.PHONY: demo test install clean-demo bench

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[dev,viz]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(MC) synth --out $(DEMO)/synth-smic --subjects 8 --clips-per-class 4 --seed 0
	$(MC) datasets check --dataset smic --root $(DEMO)/synth-smic

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean-demo:
	rm -rf $(DEMO)
