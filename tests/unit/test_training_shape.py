"""`training/` has the torchtune shape: components in `training/components/`, runnable recipes in
`training/` that import only components and `training.tasks`, and a YAML config per recipe whose
first line is the command that runs it (and which the recipe's parser accepts)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from training.components.config import parse_with_config

ROOT = Path(__file__).resolve().parents[2]
TRAINING = ROOT / "training"
CONFIGS = sorted((TRAINING / "configs").glob("*.yaml"))


def recipe_modules() -> dict[str, Path]:
    """module name -> file of every `python -m training.X` recipe."""
    recipes = {f"training.{p.stem}": p for p in TRAINING.glob("*.py")
               if "__main__" in p.read_text() and p.stem != "__init__"}
    recipes["training.tasks"] = TRAINING / "tasks" / "__main__.py"
    return recipes


def training_imports(path: Path) -> set[str]:
    """The `training.*` modules a file imports (absolute imports, as the project writes them)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("training"):
            if node.module == "training":
                names.update(f"training.{alias.name}" for alias in node.names)
            else:
                names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("training"))
    return names


def allowed_for_recipe(module: str) -> bool:
    return module.startswith(("training.components", "training.tasks"))


@pytest.mark.parametrize("module", sorted(recipe_modules()))
def test_a_recipe_imports_only_components_and_tasks(module: str) -> None:
    bad = sorted(m for m in training_imports(recipe_modules()[module]) if not allowed_for_recipe(m))
    assert not bad, f"{module} imports other recipes {bad}: move what they share to components"


def test_components_never_import_a_recipe() -> None:
    offences = [f"{path.name} imports {sorted(bad)}"
                for path in sorted((TRAINING / "components").glob("*.py"))
                if (bad := {m for m in training_imports(path) if not allowed_for_recipe(m)})]
    assert not offences, "\n".join(offences)


def test_the_checker_sees_a_recipe_importing_a_recipe(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from training.prm import encode_row\nfrom training import rollouts\n"
                      "from training.components.jsonl import read_jsonl\n")
    assert {m for m in training_imports(module) if not allowed_for_recipe(m)} == \
        {"training.prm", "training.rollouts"}


def config_command(path: Path) -> tuple[str, str]:
    """(module, config path) named by a config's first line, `# python -m MODULE --config PATH`."""
    words = path.read_text().splitlines()[0].split()
    assert words[:3] == ["#", "python", "-m"] and words[4] == "--config", \
        f"{path.name}: the first line must be '# python -m training.X --config {path}'"
    return words[3], words[5]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_a_config_names_its_command_and_its_recipe_accepts_it(path: Path) -> None:
    module, config = config_command(path)
    assert module in recipe_modules(), f"{path.name} runs {module}, which is not a recipe"
    assert (ROOT / config).resolve() == path.resolve()
    recipe = importlib.import_module(module if module != "training.tasks"
                                     else "training.tasks.__main__")
    args = parse_with_config(recipe.build_parser(), ["--config", str(path)])
    assert args.config == path


def test_every_recipe_has_a_config() -> None:
    configured = {config_command(path)[0] for path in CONFIGS}
    assert set(recipe_modules()) <= configured, sorted(set(recipe_modules()) - configured)
