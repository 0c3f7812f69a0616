"""benchmarks/: the headline benchmarks behind one command (`python -m benchmarks`), the studies
apart, and the tests starting their servers without them."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from benchmarks.__main__ import HEADLINE, main

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"


def test_the_listing_names_every_headline_benchmark_with_its_summary(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in HEADLINE:
        assert f"  {name} " in out
    assert "What scoring costs: PRM and ORM latency per step batch" in out


def test_every_headline_benchmark_is_a_runnable_module_and_no_study_is_one():
    for name in HEADLINE:
        assert 'if __name__ == "__main__":' in (BENCHMARKS / f"{name}.py").read_text()
    studies = {p.stem for p in (BENCHMARKS / "studies").glob("*.py")} - {"__init__"}
    assert studies and not studies & set(HEADLINE)


def test_a_benchmark_runs_with_its_own_flags_and_an_unknown_name_is_refused(capsys):
    argv = list(sys.argv)
    with pytest.raises(SystemExit) as exit_:
        main(["scoring", "--help"])
    assert exit_.value.code == 0 and sys.argv == argv
    assert "--repeats" in capsys.readouterr().out
    assert main(["value_ceiling"]) == 2
    assert "use one of reasoning, serving" in capsys.readouterr().err


def test_the_integration_tests_import_nothing_from_the_benchmarks():
    importers = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                       [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(m.split(".")[0] == "benchmarks" for m in modules):
                importers.append(str(path.relative_to(ROOT)))
    # only the unit tests of the headline benchmarks' own bookkeeping
    assert importers and all(p.startswith("tests/unit/") for p in importers), importers
