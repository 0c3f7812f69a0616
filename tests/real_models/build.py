"""Builds the fixture chat models (tests/real_models/chat_models.py) and the reward models made
from them (tests/real_models/reward_models.py).

    python -m tests.real_models.build [--out tests/real_models/models] [--only qwen2-chat]

The committed copies under tests/real_models/models/ (0.6-0.7 MB each) are what the tests use:
committed rather than built by a session fixture because training takes 40 s of CPU per model
(minutes on a busy 2-core machine), more than the suite's share. Rebuild them with this command
after changing the builders (seeded, one thread: the same machine gives the same weights).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tests.real_models.chat_models import SPECS, build
from tests.real_models.reward_models import BUILDERS

MODELS = Path(__file__).parent / "models"


def model_dir(name: str) -> Path:
    """The committed fixture model `name` (a key of SPECS or of reward_models.BUILDERS)."""
    path = MODELS / name
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} is missing; build it with python -m "
                                f"tests.real_models.build --only {name}")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.real_models.build",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MODELS)
    parser.add_argument("--only", choices=sorted(SPECS) + sorted(BUILDERS), action="append")
    args = parser.parse_args(argv)
    # chat models first: the reward models are made from them
    for name in [n for n in [*SPECS, *BUILDERS] if n in (args.only or [*SPECS, *BUILDERS])]:
        started = time.monotonic()
        if name in SPECS:
            path = build(SPECS[name], args.out / name)
        else:
            chat_model, build_reward_model = BUILDERS[name]
            path = build_reward_model(args.out / chat_model, args.out / name)
        print(f"{name}: {path} in {time.monotonic() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
