"""A recipe's YAML config and its flags: the command line wins, repeatable flags included."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from training.components.config import parse_with_config


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", action="append", default=None)
    p.add_argument("--lr", type=float, default=1e-3)
    return p


def test_a_repeated_flag_replaces_the_configs_list_instead_of_adding_to_it(tmp_path):
    config = tmp_path / "recipe.yaml"
    config.write_text("dataset: [task:countdown:100, task:arithmetic:100]\nlr: 0.01\n")
    args = parse_with_config(parser(), ["--config", str(config), "--dataset", "mine.jsonl"])
    assert args.dataset == ["mine.jsonl"] and args.lr == 0.01
    args = parse_with_config(parser(), ["--config", str(config)])
    assert args.dataset == ["task:countdown:100", "task:arithmetic:100"]
    args = parse_with_config(parser(), ["--config", str(config), "--lr", "0.5"])
    assert args.lr == 0.5


def test_without_a_config_the_parsers_own_defaults_hold():
    args = parse_with_config(parser(), ["--dataset", "a", "--dataset", "b"])
    assert args.dataset == ["a", "b"] and args.lr == 1e-3
    assert parse_with_config(parser(), []).dataset is None


def typed_parser() -> argparse.ArgumentParser:
    p = parser()
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--keep", choices=("last", "best"), default="last")
    p.add_argument("--layers", type=int, nargs="+", default=None)
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--out", type=Path, default=None)
    return p


def test_config_values_get_the_flags_types(tmp_path):
    config = tmp_path / "recipe.yaml"
    config.write_text("lr: 1e-3\nbatch_size: 8\nlayers: 3\nbf16: false\nout: runs/a\nkeep: best\n"
                      "dataset: one.jsonl\n")
    args = parse_with_config(typed_parser(), ["--config", str(config)])
    assert (args.lr, args.batch_size, args.layers, args.bf16, args.out, args.keep) == (
        0.001, 8, [3], False, Path("runs/a"), "best")
    assert args.dataset == ["one.jsonl"]


@pytest.mark.parametrize("line, problem", [
    ("keep: first", "keep: 'first' is not one of 'last', 'best'"),
    ("batch_size: 8.5", "batch_size: 8.5 is not a valid int"),
    ("batch_size: [8]", "batch_size: [8] is a list; --batch-size takes one value"),
    ("layers: [1, two]", "layers: 'two' is not a valid int"),
    ("bf16: maybe", "bf16: 'maybe' is not true or false"),
])
def test_a_config_value_its_flag_would_refuse_is_refused_naming_key_and_file(
        tmp_path, capsys, line, problem):
    config = tmp_path / "recipe.yaml"
    config.write_text(line + "\n")
    with pytest.raises(SystemExit) as exit_info:
        parse_with_config(typed_parser(), ["--config", str(config)])
    assert exit_info.value.code == 2
    assert f"--config {config}: {problem}" in capsys.readouterr().err
