# lambdapack — everything a fresh machine needs is installed by these targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEPS_STAMP := $(VENV)/.dependencies
STAMP := $(VENV)/.installed
# lambdapack is installed into .venv as a user gets it (a built wheel, not an
# editable checkout), so the tests run the package with its shipped resources;
# it is reinstalled whenever one of these changes.
SOURCES := pyproject.toml Dockerfile.amazonlinux build.sh $(shell find pack handler \( -name '*.py' -o -name '*.json' \) -not -path '*/__pycache__/*' 2>/dev/null)
SAMPLE := build/sample
SAMPLE_MODEL := $(SAMPLE)/digits.keras
OUT ?= dist
PACK_ARGS ?=

.PHONY: all demo venv sample pack report deploy wire local docker-setup browser test test-unit test-fast lint bench clean

all: demo

# The virtual environment: lambdapack's dependencies with its build/test extras
# (once per pyproject.toml), then lambdapack itself, built from this checkout.
$(DEPS_STAMP): pyproject.toml
	@command -v strip >/dev/null && command -v cc >/dev/null || (apt-get update && apt-get install -y binutils gcc)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet '.[dev]'
	touch $@

$(STAMP): $(DEPS_STAMP) $(SOURCES)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation --force-reinstall .
	touch $@

venv: $(STAMP)

# The sample model: a Keras CNN trained on scikit-learn's digits (no download).
$(SAMPLE_MODEL): scripts/make_sample_model.py handler/lambdapack_handler/imaging.py | $(STAMP)
	$(PY) scripts/make_sample_model.py --out $(SAMPLE)

sample: $(SAMPLE_MODEL)

# BUILDER=docker packs inside Dockerfile.amazonlinux (BASE_IMAGE=... to choose the base).
BUILDER ?= native
DOCKER_ARGS = $(if $(filter docker,$(BUILDER)),--builder docker --docker-host-network $(if $(BASE_IMAGE),--base-image $(BASE_IMAGE)),)

# The default target (python3.13) compiles, smoke-runs and runs locally in its own
# interpreter: a container image that docker-setup builds once.
pack: $(SAMPLE_MODEL) docker-setup
	$(VENV)/bin/lambdapack pack $(SAMPLE_MODEL) --samples $(SAMPLE)/samples --out $(OUT) $(DOCKER_ARGS) $(PACK_ARGS)

# The whole pipeline, locally: pack, local AWS endpoint, deploy, wire, upload
# the held-out digits, results, accuracy, throughput. Stops what it starts.
demo: pack
	$(PY) scripts/demo.py --zip $(OUT)/function.zip --sample $(SAMPLE)

local: $(STAMP)
	$(VENV)/bin/lambdapack local

report: $(STAMP)
	$(VENV)/bin/lambdapack report $(OUT)/function.zip

# Settings come from lambdapack.toml or [tool.lambdapack] in pyproject.toml;
# AWS_ENDPOINT_URL points them at a local endpoint.
deploy: $(STAMP)
	$(VENV)/bin/lambdapack deploy $(DEPLOY_ARGS)

wire: $(STAMP)
	$(VENV)/bin/lambdapack wire $(WIRE_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check pack handler scripts tests
	$(VENV)/bin/ruff format --check pack handler scripts tests

# A Docker engine, QEMU for arm64, and local images of each target's Python
# (bookworm 3.11, trixie 3.13, forky 3.14, trixie arm64), cached by tag.
docker-setup:
	sh scripts/docker_setup.sh

# Headless Chromium, for the tests that render the HTML pages (tests/test_pages_browser.py).
browser:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

test: $(SAMPLE_MODEL) lint docker-setup browser
	$(PY) -m pytest -q -rfEs

test-unit: $(STAMP)
	$(PY) -m pytest -q -m "not functional"

# The unit tier and the functional tests that need no Docker, QEMU or TensorFlow (README: Tests).
test-fast: $(STAMP) $(SAMPLE_MODEL)
	$(PY) -m pytest -q -rfEs -m "not (container or qemu or tensorflow)"

bench: $(SAMPLE_MODEL) docker-setup
	$(PY) scripts/bench_pack.py
	$(PY) scripts/bench_handler.py
	$(PY) scripts/bench_local.py
	$(PY) scripts/bench_staged.py
	$(PY) scripts/bench_cold_start.py

clean:
	rm -rf build dist .pytest_cache
