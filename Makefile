# Thin, documented entry points. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The torch pair installed first (this project's machines carry these wheels on disk).
TORCH_VERSION       ?= 2.14.1
TORCHVISION_VERSION ?= 0.29.1
# Real data for the tests and benchmarks (skipped when absent).
PNEUMO_TEST_DATA ?= $(abspath ../shared/data)
export PNEUMO_TEST_DATA

.PHONY: help install demo test lint bench bench-train bench-gpu bench-serve bench-predict bench-tune bench-stream bench-hostile serve clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "torch==$(TORCH_VERSION)" "torchvision==$(TORCHVISION_VERSION)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install pneumo with its dev tools

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

serve: $(STAMP)  ## serve the champion model (after train, register, promote)
	$(BIN)/pneumo serve

clean:  ## remove the default work folder (pneumo-work/)
	rm -rf pneumo-work
