"""The packages depend one way: server -> search -> verifiers -> engine (design.md, "Layout").
`adapters` serves `server`; `training` never imports `server`. Read from the source, so a new
upward import fails here rather than in a review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package -> the project packages it must never import
FORBIDDEN = {
    "engine": {"server", "search", "verifiers", "adapters", "training"},
    "verifiers": {"server", "search", "adapters", "training"},
    "search": {"server", "adapters", "training"},
    "adapters": {"server", "search", "verifiers", "training"},
    "training": {"server"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_downward(package: str) -> None:
    offences = [f"{path.relative_to(ROOT)} imports {sorted(bad)}"
                for path in sorted((ROOT / package).rglob("*.py"))
                if (bad := imported_packages(path) & FORBIDDEN[package])]
    assert not offences, "\n".join(offences)


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom server.app import create_app\nfrom .x import y\n")
    assert imported_packages(module) == {"os", "server"}
