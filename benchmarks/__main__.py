"""The headline benchmarks behind one command:

    python -m benchmarks                  # lists them
    python -m benchmarks NAME [flags]     # runs one; the same as python -m benchmarks.NAME

They share benchmarks/harness/ and write their tables under benchmarks/results/. The one-off
studies (benchmarks/studies/) run as `python -m benchmarks.studies.NAME`.
"""

from __future__ import annotations

import ast
import runpy
import sys
import textwrap
from pathlib import Path

HEADLINE = ("reasoning", "serving", "adapters", "remote", "load_faults", "fuzz", "scoring",
            "peft", "rl", "calibrate_router", "calibrate_confidence", "admission",
            "metacognition", "long_range", "physics", "peers", "eval_harness", "swarm")


def summary(name: str) -> str:
    """The benchmark's docstring's first paragraph, shortened to a line, read without importing
    the module (which may import vLLM or matplotlib)."""
    source = (Path(__file__).parent / f"{name}.py").read_text()
    first = (ast.get_docstring(ast.parse(source)) or "").split("\n\n")[0]
    return textwrap.shorten(first, width=80, placeholder=" ...")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip() + "\n")
        for name in HEADLINE:
            print(f"  {name:17s} {summary(name)}")
        return 0
    name, flags = argv[0], argv[1:]
    if name not in HEADLINE:
        print(f"no headline benchmark {name!r}: use one of {', '.join(HEADLINE)}", file=sys.stderr)
        return 2
    argv_before, sys.argv = sys.argv, [f"benchmarks {name}", *flags]
    try:
        runpy.run_module(f"benchmarks.{name}", run_name="__main__", alter_sys=True)
    finally:
        sys.argv = argv_before
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
