# Every target does its own set-up on a fresh Debian machine:
#   a .venv made once, the CPU build of torch, the package and its dependencies, and the Debian packages
#   the renderer (EGL/Mesa llvmpipe) and the browser tests (Chromium) need.
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

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Debian packages: installed with apt-get when running as root; otherwise we say what is missing.
$(SYS_STAMP): | $(PY)
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing Debian packages:$$missing (run: sudo apt-get install$$missing)"; exit 1; \
	  fi; \
	fi
	@touch $@

# The CPU torch wheel first, so that the package's 'torch>=2.4' is already satisfied and pip never
# resolves a CUDA build.
$(STAMP): pyproject.toml $(SYS_STAMP) | $(PY)
	$(PIP) install -q "torch==$(TORCH_VERSION)"
	$(PIP) install -q -e ".[test]"
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
