# Two commands for a newcomer:  `make demo` (set up + the main job)  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= runs/demo

.PHONY: demo readme-numbers test setup clean

setup: $(VENV)/.installed

# torch/torchvision are pinned to the builds this project is developed and tested with (torch's
# CUDA build: about 5.7 GB, downloaded once; it also runs on a CPU).
$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install --quiet -e '.[test,ray,lightning,huggingface,timm]'
	touch $@

# The main job, scripts/demo.py: on the embedded CIFAR-10 subset, offline, on the CPU, at laptop
# size (vgg_light, the 1,599 embedded training images):
# 1. the paper's setting (plain SGD, lr 0.1, 1,000 steps) with and without BatchNorm, three
#    seeds: each verdict with the per-seed range over the seeds;
# 2. the course's four-lr Adam sweep (200 steps, three seeds) beside it, probed along the update
#    Adam takes: each verdict pooled over the lrs and at each lr.
# Each record gets its figures, summary.txt and an HTML report (runs/demo-*); the demo ends with
# the verdicts at a glance, the files written and its own run time on this machine.
demo: setup
	$(BIN)/python scripts/demo.py --out $(OUT)

# The README's demo block (the end of the demo's output), regenerated on this machine.
readme-numbers: setup
	$(BIN)/python scripts/readme_numbers.py

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache *.egg-info
