"""Schema fuzzing: schemathesis generates requests from the server's OpenAPI schema, valid ones and
ones that break it, for every operation, and sends them to a real server; no answer may be a
5xx, and the server must be healthy afterwards.

    python -m benchmarks.fuzz --cases 1200    # results in benchmarks/results/fuzz.{md,json}

The cases and their checks are tests/fuzzing.py's, which the CI test
(tests/integration/test_fuzz.py) runs with a few cases per operation against the shared test
server; this runs over a thousand against a server of its own with small caps (`SERVER_FLAGS`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import httpx

from tests.fuzzing import SERVER_FLAGS, FuzzReport, fuzz
from tests.servers import free_port, running_server

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1200, help="generated cases in all")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    args = parser.parse_args()
    port = args.port or free_port()
    RESULTS.mkdir(exist_ok=True)
    command = ["-m", "server", "--port", str(port), "--default-strategy", "auto", *SERVER_FLAGS]
    with running_server(command, port, Path("/tmp") / "deliberate-fuzz-server.log") as url:
        operations = len(httpx.get(f"{url}/openapi.json").json()["paths"]) + 1
        report = fuzz(url, args.cases // operations * 2)
        healthy = httpx.get(f"{url}/health").status_code == 200
    write(report, healthy)


def write(report: FuzzReport, healthy: bool) -> None:
    fives = sum(n for c in report.statuses.values() for s, n in c.items() if s >= 500)
    body = {"cases": report.cases, "responses_5xx": fives, "no_answer": report.no_answer,
            "healthy_after": healthy,
            "wall_s": round(report.wall_s, 1), "server_flags": SERVER_FLAGS,
            "statuses": {op: dict(sorted(c.items())) for op, c in report.statuses.items()},
            "server_errors": report.server_errors}
    (RESULTS / "fuzz.json").write_text(json.dumps(body, indent=2) + "\n")
    lines = ["# Schema fuzzing (schemathesis)", "",
             "`python -m benchmarks.fuzz` against a real server (demo model, CPU engine), "
             "valid and schema-breaking cases for every operation of its OpenAPI schema.", "",
             f"Cases: **{report.cases}**, responses 500 or above: **{fives}**, cases never "
             f"answered: **{len(report.no_answer)}**, "
             f"/health after: **{200 if healthy else 503}**, wall {report.wall_s:.0f} s.", "",
             "| operation | cases | status codes |", "|---|---:|---|"]
    for op, counts in sorted(report.statuses.items()):
        codes = ", ".join(f"{s}: {n}" for s, n in sorted(counts.items()))
        lines.append(f"| `{op}` | {sum(counts.values())} | {codes} |")
    lines += ["", f"Server flags: `{' '.join(SERVER_FLAGS)}`", ""]
    (RESULTS / "fuzz.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
