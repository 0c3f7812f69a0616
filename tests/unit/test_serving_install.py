"""The serving install carries no training stack: pyproject's core dependencies are what serving
imports, the training stack is the `train` extra, and no module the server loads imports it."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
SERVING = ("server", "engine", "search", "verifiers", "adapters")
TRAINING_STACK = ("trl", "datasets", "accelerate", "bitsandbytes", "peft")


def names(requirements: list[str]) -> set[str]:
    return {Requirement(r).name.lower() for r in requirements}


def test_the_training_stack_is_the_train_extra_not_a_core_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert names(project["dependencies"]).isdisjoint(TRAINING_STACK)
    assert set(TRAINING_STACK) <= names(project["optional-dependencies"]["train"])


def imported_roots(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) of every import in the file, those inside functions included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def test_no_serving_module_imports_the_training_stack_or_the_training_package():
    offending = [f"{path.relative_to(ROOT)}:{line}: {module}"
                 for package in SERVING for path in sorted((ROOT / package).rglob("*.py"))
                 for line, module in imported_roots(path)
                 if module in (*TRAINING_STACK, "training", "sklearn")]
    assert offending == []  # sklearn: the confidence calibration is fitted offline only


# Every module of the serving packages imported as `python -m server` would (vLLM and torch
# included), with the training stack absent: `import` of it fails, and transformers, which
# probes for accelerate and peft, finds neither.
IMPORT_ALL = f"""
import importlib, pkgutil, sys
for name in {TRAINING_STACK + ("training", "sklearn")!r}:
    sys.modules[name] = None
for package in {SERVING!r}:
    for module in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
        importlib.import_module(module.name)
"""


@pytest.mark.slow
def test_every_serving_module_imports_without_the_training_stack():
    result = subprocess.run([sys.executable, "-c", IMPORT_ALL], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("dockerfile", ["Dockerfile.cpu", "Dockerfile.gpu"])
def test_the_images_install_serving_alone_and_run_as_an_unprivileged_user(dockerfile):
    text = (ROOT / "docker" / dockerfile).read_text()
    final_stage = text.split("\nFROM ")[-1]
    users = re.findall(r"^USER (\S+)", final_stage, re.M)
    assert users and users[-1] not in ("root", "0")
    installs = re.findall(r"pip install [^;\n]*", text)
    assert installs and not any("train" in line or "dev" in line for line in installs)
    assert not re.search(r"^COPY training\b", text, re.M)
