"""`python -m benchmarks`: the headline benchmarks behind one command."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from benchmarks.__main__ import HEADLINE, main

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


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
