# Every target does its own set-up on a fresh Debian machine:
#   a .venv made once, the CPU build of torch, the package and its dependencies, and the Debian packages
#   the renderer (EGL/Mesa llvmpipe) and the browser tests (Chromium) need.
# Set-up is quiet: each step's pip or apt output goes to $(VENV)/setup.log, printed only when the step fails.
# Debian packages (scripts/sysdeps.sh): only the missing ones, without recommends, and nothing installed is
# ever upgraded or removed; as root they are installed, otherwise set-up says what to install.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.relic-installed
SYS_STAMP := $(VENV)/.relic-sysdeps
TORCH_VERSION ?= 2.13.0
DEB_PACKAGES := libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri chromium
HOST ?= 127.0.0.1
PORT ?= 7860

.PHONY: play test test-fast setup sysdeps bench clean help

help:
	@echo "make play   - start the interactive world in the browser (default model)"
	@echo "make test   - run the whole test suite"
	@echo "make setup  - only install (.venv, CPU torch, package, Debian packages)"

LOG := $(VENV)/setup.log
# run a set-up step with its output in $(LOG); on failure print the log and stop
LOGGED = >>$(LOG) 2>&1 || { echo "set-up: failed; its log ($(LOG)) follows"; cat $(LOG); exit 1; }

$(PY):
	@echo "set-up: making $(VENV) (log: $(LOG))"
	@python3 -m venv $(VENV)
	@: > $(LOG)
	@$(PIP) install -q --upgrade pip $(LOGGED)

# Debian packages: installed with apt-get when running as root; otherwise we say what is missing.
$(SYS_STAMP): | $(PY)
	@bash scripts/sysdeps.sh $(LOG) $(DEB_PACKAGES)
	@touch $@

# The CPU torch wheel first, so that the package's 'torch>=2.4' is already satisfied and pip never
# resolves a CUDA build.
$(STAMP): pyproject.toml $(SYS_STAMP) | $(PY)
	@echo "set-up: installing torch==$(TORCH_VERSION) (CPU) and the package into $(VENV) (log: $(LOG))"
	@: > $(LOG)
	@$(PIP) install -q "torch==$(TORCH_VERSION)" $(LOGGED)
	@$(PIP) install -q -e ".[test]" $(LOGGED)
	@touch $@

setup: $(STAMP)

sysdeps: $(SYS_STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not browser"

play: $(STAMP)
	$(VENV)/bin/relic play --host $(HOST) --port $(PORT)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
