# Two commands for a newcomer:  `make demo` (set up + the main job)  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= runs/demo

.PHONY: demo test setup clean

setup: $(VENV)/.installed

# torch/torchvision are pinned to the builds this project is developed and tested with.
$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# The main job on the embedded CIFAR-10 subset (offline, a few minutes on 2 CPU cores):
# VGG-A with and without BatchNorm at the course's four learning rates, the paper's probe every
# 10 steps, then the record's summary and every figure.
demo: setup
	mkdir -p $(dir $(OUT))
	$(BIN)/landscape record --model vgg,vgg_bn --lrs 1e-3,2e-3,5e-4,1e-4 --max-steps 30 \
		--probe-every 10 -o $(OUT).h5 --overwrite
	$(BIN)/landscape info $(OUT).h5
	$(BIN)/landscape plot $(OUT).h5 --out $(OUT)-figures

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache *.egg-info
