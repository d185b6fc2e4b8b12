# The first two commands of the README: `make demo` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cubestream-installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: env demo test lint typecheck unit bench clean

env: $(STAMP)

# torch first (the registry's standard build: torchvision and timm need it), then deepspeed built
# against it without an isolated build environment, then the project with its pinned stack.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -c constraints.txt torch torchvision
	DS_BUILD_OPS=0 $(BIN)/python -m pip install -q -c constraints.txt --no-build-isolation deepspeed
	$(BIN)/python -m pip install -q -c constraints.txt --no-build-isolation -e ".[dev,replica,train,cluster]"
	$(BIN)/python -c "import timm, pytorch_lightning, deepspeed, stackstac, xbatcher, rasterio, zarr"
	touch $@

demo: env
	$(BIN)/python -m cubestream.demo

lint: env
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: env
	$(BIN)/mypy

unit: env
	$(BIN)/python -m pytest

test: lint typecheck unit

# the benchmark suite at its default (tiny) size, then its report and the README's table
bench: env
	$(BIN)/cubestream bench
	# level-1 at the decode limit: one full tile at native 10 / 20 m, local paths and S3
	$(BIN)/python -m benchmarks.l1_bytes --preset tile
	$(BIN)/cubestream bench report --readme README.md

clean:
	rm -rf $(VENV) demo .mypy_cache .ruff_cache .pytest_cache

# every GPU path once (bf16, DDP/NCCL, DeepSpeed ZeRO 1-3, CUDA benchmarks, pinned loader, gpu
# tests): one JSON in benchmarks/results/gpu_check.json; exit 3 without a CUDA device
.PHONY: gpu-check
gpu-check: env
	$(BIN)/python -m benchmarks.gpu_check
