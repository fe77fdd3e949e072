# Thin, documented entry points. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The torch pair the locks pin (requirements/constraints.txt; this project's machines carry these
# wheels on disk). To move it: change it here and there, then `make lock`.
TORCH_VERSION       ?= 2.14.1
TORCHVISION_VERSION ?= 0.29.1
# Lock files (requirements/, README "Dependencies: lock files"): uv from the dev extra.
UV      ?= $(BIN)/uv
# `make lock UPGRADE=--upgrade` (or `UPGRADE="--upgrade-package NAME"`) moves pins within the ranges
# of pyproject.toml; without it the pins already in the locks are kept.
UPGRADE ?=
LOCK     = $(UV) pip compile --quiet --generate-hashes --python-platform x86_64-manylinux_2_28 \
           --no-python-downloads --no-strip-extras -c requirements/constraints.txt $(UPGRADE)
# Real data for the tests and benchmarks (skipped when absent).
PNEUMO_TEST_DATA ?= $(abspath ../shared/data)
export PNEUMO_TEST_DATA

.PHONY: help install lock demo test lint bench bench-train bench-gpu bench-serve bench-predict bench-tune bench-stream bench-hostile bench-explain bench-pointing bench-int8 bench-cold serve clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# Everything from the locks, each file checked against its hash, and nothing built by a tool
# fetched unhashed (--no-build-isolation: build.lock's hatchling and setuptools build what needs
# building); then pneumo itself, editable, without its dependencies (dev.lock has them).
$(STAMP): pyproject.toml requirements/build.lock requirements/dev.lock
	@grep -q '^torch==$(TORCH_VERSION) ' requirements/dev.lock \
	  && grep -q '^torchvision==$(TORCHVISION_VERSION) ' requirements/dev.lock \
	  || { echo "requirements/dev.lock does not pin torch==$(TORCH_VERSION)" \
	       "torchvision==$(TORCHVISION_VERSION): change requirements/constraints.txt, then make lock" >&2; \
	       exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/build.lock
	$(BIN)/python -m pip install --quiet --require-hashes --no-build-isolation -r requirements/dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install pneumo with its dev tools (requirements/dev.lock)

# dev.lock first: the others take it as constraints, so that every package they share with it is
# at the version the tests run with. Python and platform: those of each lock's consumer.
lock: $(STAMP)  ## regenerate requirements/*.lock from pyproject.toml and requirements/*.in
	$(LOCK) --python-version 3.11 pyproject.toml requirements/build.in --extra dev \
	  -o requirements/dev.lock
	$(LOCK) --python-version 3.11 requirements/build.in -c requirements/dev.lock \
	  -o requirements/build.lock
	$(LOCK) --python-version 3.11 --only-binary :all: pyproject.toml --extra serve \
	  -c requirements/dev.lock -o requirements/serve.lock
	$(LOCK) --python-version 3.12 --only-binary :all: pyproject.toml --extra train \
	  -c requirements/dev.lock -o requirements/train.lock
	$(LOCK) --python-version 3.11 --only-binary :all: requirements/mlflow.in \
	  -c requirements/dev.lock -o requirements/mlflow.lock

demo: $(STAMP)  ## the whole cycle on synthetic data, ending in a served model (Ctrl-C stops)
	$(BIN)/pneumo demo

test: $(STAMP)  ## the test suite (real-data tests run when ../shared/data exists)
	$(BIN)/pytest

lint: $(STAMP)  ## ruff (lint + format), mypy --strict and the import contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)  ## prepare throughput against a bare Pillow loop on the NIH sample
	$(BIN)/python benchmarks/prepare_throughput.py

bench-train: $(STAMP)  ## training throughput: end to end against the bare model step
	$(BIN)/python benchmarks/train_throughput.py

bench-gpu: $(STAMP)  ## on a CUDA machine: training benchmarks and the Kermany GPU recipe
	PYTHON=$(BIN)/python bash benchmarks/gpu.sh ../shared/data/kermany-224 gpu-results

bench-serve: $(STAMP)  ## service latency and throughput against bare in-process ONNX Runtime
	$(BIN)/python benchmarks/serve_latency.py

bench-predict: $(STAMP)  ## pneumo predict against bare decode + ONNX Runtime on the NIH sample
	$(BIN)/python benchmarks/predict_throughput.py

bench-tune: $(STAMP)  ## pneumo tune: a pruned study's wall time against the unpruned one's
	$(BIN)/python benchmarks/tune_pruning.py

bench-stream: $(STAMP)  ## training streamed from an S3 server on 127.0.0.1 against local disk
	$(BIN)/python benchmarks/stream_train.py

bench-hostile: $(STAMP)  ## good requests' throughput with 10 % hostile uploads against clean
	$(BIN)/python benchmarks/hostile_load.py

bench-explain: $(STAMP)  ## /v1/explain and /v1/predict against the model file without maps
	$(BIN)/python benchmarks/explain_latency.py

bench-pointing: $(STAMP)  ## the maps on NIH's Pneumonia boxes (pointing game), randomisation SSIM
	$(BIN)/python benchmarks/pointing_game.py

bench-int8: $(STAMP)  ## int8 against float32 per backbone (latency, throughput), same run
	$(BIN)/python benchmarks/int8_speed.py

bench-cold: $(STAMP)  ## the service's cold start to its first answer, float32 and int8
	$(BIN)/python benchmarks/cold_start.py

serve: $(STAMP)  ## serve the champion model (after train, register, promote)
	$(BIN)/pneumo serve

clean:  ## remove the default work folder (pneumo-work/)
	rm -rf pneumo-work
