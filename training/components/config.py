"""Recipe configuration: a YAML file (its first line the command that runs it) plus flag overrides."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import yaml


def parse_with_config(parser: argparse.ArgumentParser, argv: list[str] | None = None
                      ) -> argparse.Namespace:
    """Parse flags over the values of `--config file.yaml`; flags given on the command line win."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path)
    known, _ = pre.parse_known_args(argv)
    values = _load_yaml(known.config, parser) if known.config else {}
    # A repeatable flag (--dataset) given on the command line replaces the file's list: argparse
    # would append to a list default instead, so those defaults are filled in after parsing.
    repeatable = {a.dest for a in parser._actions if isinstance(a, argparse._AppendAction)}
    later = {key: value for key, value in values.items() if key in repeatable}
    parser.set_defaults(**{key: value for key, value in values.items() if key not in later},
                        **dict.fromkeys(later))
    parser.add_argument("--config", type=Path, help="YAML file of defaults; flags override it")
    args = parser.parse_args(argv)
    for key, value in later.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def run_checked(parser: argparse.ArgumentParser, train_fn, argv: list[str] | None,
                checks: Callable[[argparse.Namespace], list[str]]) -> int:
    """What every recipe's main does: config + flags, refuse what `checks(args)` finds (each
    message naming the fix), print the resolved config on --dry-run, else train."""
    args = parse_with_config(parser, argv)
    problems = checks(args)
    if problems:
        parser.error("; ".join(problems))
    if args.dry_run:
        print(resolved(args))
        return 0
    train_fn(args)
    return 0


def _load_yaml(path: Path, parser: argparse.ArgumentParser) -> dict:
    if not path.is_file():
        parser.error(f"--config {path} does not exist")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        parser.error(f"--config {path} must be a mapping of option names to values")
    known = {action.dest for action in parser._actions}
    values = {key.replace("-", "_"): value for key, value in values.items()}
    unknown = sorted(set(values) - known)
    if unknown:
        parser.error(f"--config {path} has unknown keys {unknown}; see --help for the options")
    # argparse checks neither choices nor (but for strings) types of defaults, which the file's
    # values become: convert and check them here as it does a flag's, naming key, file and fix
    actions = {action.dest: action for action in parser._actions}
    problems = []
    for key, value in values.items():
        try:
            values[key] = _as_flag_value(actions[key], value)
        except (TypeError, ValueError) as error:
            problems.append(f"{key}: {error}")
    if problems:
        parser.error(f"--config {path}: " + "; ".join(problems))
    return values


def _as_flag_value(action: argparse.Action, value: object) -> object:
    """A config value as its flag would give it: argparse's type and choices applied (None:
    the flag not given)."""
    if value is None:
        return None
    if action.nargs == 0:  # --x, --no-x
        if not isinstance(value, bool):
            raise ValueError(f"{value!r} is not true or false")
        return value
    repeated = isinstance(action, argparse._AppendAction) or action.nargs in ("*", "+")
    if isinstance(value, list) and not repeated:
        raise ValueError(f"{value!r} is a list; {action.option_strings[0]} takes one value")
    items = [_as_flag_item(action, item) for item in (value if isinstance(value, list)
                                                       else [value])]
    return items if repeated else items[0]


def _as_flag_item(action: argparse.Action, value: object) -> object:
    if isinstance(value, dict | list):
        raise ValueError(f"{value!r} is not a single value")
    convert = action.type or str
    try:  # YAML's scalars as the text a flag would carry (8 -> "8", so 8.5 is no int)
        converted = convert(value if isinstance(value, str) else str(value))
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a valid {getattr(convert, '__name__', convert)}"
                         ) from None
    if action.choices is not None and converted not in action.choices:
        allowed = ", ".join(repr(choice) for choice in action.choices)
        raise ValueError(f"{value!r} is not one of {allowed}")
    return converted


def resolved(args: argparse.Namespace) -> str:
    """The effective configuration as JSON (what --dry-run prints)."""
    return json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                      indent=2, sort_keys=True)
