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
	$(BIN)/python -m pip install --quiet -e '.[test,ray,timm]'
	touch $@

# The main job on the embedded CIFAR-10 subset (offline, about 5 minutes on 2 CPU cores), at
# laptop size (vgg_light, the 1,599 embedded training images, a few hundred steps):
# 1. the paper's setting (plain SGD, lr 0.1) with and without BatchNorm, three seeds: the
#    verdict with 95% intervals over seeds;
# 2. the course's four-lr Adam sweep beside it, probed along the update Adam takes.
# Each prints its BN vs no-BN summary, writes its figures and one HTML report beside its record
# (the last lines print the reports' paths).
demo: setup
	mkdir -p $(dir $(OUT))
	$(BIN)/landscape record --preset demo-paper --device cpu -o $(OUT)-paper.h5 --overwrite
	$(BIN)/landscape plot $(OUT)-paper.h5 --out $(OUT)-paper-figures
	$(BIN)/landscape record --preset demo-course --device cpu -o $(OUT)-course.h5 --overwrite
	$(BIN)/landscape plot $(OUT)-course.h5 --out $(OUT)-course-figures
	$(BIN)/landscape report $(OUT)-paper.h5 -o $(OUT)-paper.html
	$(BIN)/landscape report $(OUT)-course.h5 -o $(OUT)-course.html

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache *.egg-info
