"""A recipe's YAML config and its flags: the command line wins, repeatable flags included."""

from __future__ import annotations

import argparse

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
