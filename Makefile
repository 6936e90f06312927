# Two commands for a newcomer:  `make demo` (set up + the main job)  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= runs/demo

.PHONY: demo readme-numbers test setup test-tools clean

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

test: setup test-tools
	$(BIN)/python -m pytest -q

# The Debian packages the tests use, installed where a command is missing: the HDF5 tools
# (h5dump, h5ls: tests/test_record_file.py reads a record whole with them) and Chromium with its
# driver (tests/test_html_report.py opens the report page headless). As root, or through sudo;
# otherwise one line says what to install, and the tests do not start (none is skipped).
TEST_COMMANDS := h5dump h5ls chromium chromedriver
TEST_PACKAGES := hdf5-tools chromium chromium-driver
test-tools:
	@missing=""; for c in $(TEST_COMMANDS); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	[ -z "$$missing" ] && exit 0; \
	install="apt-get install -y -qq --no-install-recommends $(TEST_PACKAGES)"; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "make test: missing$$missing; install the packages that provide them (Debian: $(TEST_PACKAGES)) and run make test again" >&2; exit 1; fi; \
	if [ "$$(id -u)" -eq 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; \
	else echo "make test: missing$$missing and not root (and sudo asks for a password); run: sudo apt-get update && sudo $$install, then make test again" >&2; exit 1; fi; \
	echo "make test: installing $(TEST_PACKAGES) (missing$$missing)" >&2; \
	$$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive $$install

clean:
	rm -rf $(VENV) runs .pytest_cache *.egg-info
