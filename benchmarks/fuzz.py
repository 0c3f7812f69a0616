"""Schema fuzzing: schemathesis generates requests from the server's OpenAPI schema, valid ones and
ones that break it, for every operation, and sends them to a real server; no answer may be a
5xx, and the server must be healthy afterwards.

    python -m benchmarks.fuzz --cases 1200    # results in benchmarks/results/fuzz.{md,json}

Most generated bodies name a model that does not exist (a 404 before the engine); `aim` sends
three in four of them to the served model instead, so that the generated numbers, strings and
options reach validation, search and the engine. The server runs with small caps (`SERVER_FLAGS`)
so that a valid case costs seconds, not minutes; values past a cap are 400s, which is fuzzed too.
The CI test (tests/integration/test_fuzz.py) runs a few cases per operation against the shared
test server, with `clamp` keeping each case as cheap.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

RESULTS = Path(__file__).parent / "results"
MODEL = "demo"
API_KEY, ADMIN_KEY = "fuzz-key", "fuzz-admin"
SERVER_FLAGS = ["--max-tokens-limit", "32", "--max-n", "4", "--max-search-tokens", "512",
                "--max-simulations", "4", "--max-beam-width", "3", "--max-depth", "4",
                "--max-candidates", "4", "--max-search-timeout-s", "5",
                "--max-search-nodes", "64", "--request-timeout-s", "60",
                "--api-key", API_KEY, "--admin-api-key", ADMIN_KEY]
ADMIN_PATHS = {"/v1/load_lora_adapter", "/v1/unload_lora_adapter", "/v1/reload_safety_policy"}
# per-case caps `clamp` applies (CI, against the shared server's default caps)
CHEAP = {"max_tokens": 16, "max_completion_tokens": 16, "n": 2, "logprobs": 2, "top_logprobs": 2,
         "prompt_logprobs": 2}
CHEAP_SEARCH = {"beam_width": 2, "max_depth": 3, "simulations": 2, "n_candidates": 2,
                "budget_tokens": 128, "max_nodes": 16, "timeout_s": 3.0}


@dataclass
class FuzzReport:
    statuses: dict[str, collections.Counter] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter))
    server_errors: list[dict] = field(default_factory=list)  # the 5xx cases, replayable
    no_answer: list[str] = field(default_factory=list)  # cases the server never answered
    wall_s: float = 0.0

    @property
    def cases(self) -> int:
        return sum(sum(c.values()) for c in self.statuses.values())

    def record(self, operation: str, case, status: int) -> None:
        self.statuses[operation][status] += 1
        if status >= 500:
            self.server_errors.append({"operation": operation, "status": status,
                                       "body": case.body if _jsonable(case.body) else None})


def aim(body, clamp: bool = False):
    """Three in four bodies that name a model name the served one (chosen by the body's hash,
    so a case replays the same); with `clamp`, generation sizes and search budgets are cut to
    `CHEAP`."""
    if not isinstance(body, dict):
        return body
    if "model" in body and int(hashlib.sha256(repr(body).encode()).hexdigest(), 16) % 4:
        body = {**body, "model": MODEL}
    if clamp:
        body = _clamped(body, CHEAP)
        if isinstance(body.get("reasoning"), dict):
            body = {**body, "reasoning": _clamped(body["reasoning"], CHEAP_SEARCH)}
    return body


def _clamped(values: dict, caps: dict) -> dict:
    out = dict(values)
    for name, cap in caps.items():
        value = out.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > cap:
            out[name] = cap
    return out


def fuzz(url: str, cases_per_operation: int, clamp: bool = False, api_key: str = API_KEY,
         admin_key: str = ADMIN_KEY, seed: int = 0) -> FuzzReport:
    """Positive and negative cases for every operation in the schema, `cases_per_operation`
    each at most (hypothesis stops early where the inputs have fewer distinct values)."""
    import hypothesis
    import hypothesis.errors
    import schemathesis
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    schema.hook("map_body")(lambda context, body: aim(body, clamp))
    report = FuzzReport()
    started = time.perf_counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        name = f"{operation.method.upper()} {operation.path}"
        key = admin_key if operation.path in ADMIN_PATHS else api_key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @hypothesis.given(operation.as_strategy(generation_mode=mode))
            @hypothesis.settings(max_examples=max(cases_per_operation // 2, 1), deadline=None,
                                 database=None, derandomize=True,
                                 suppress_health_check=list(hypothesis.HealthCheck),
                                 phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])
            def send(case) -> None:
                try:
                    response = case.call(base_url=url, headers=headers, timeout=120)
                except Exception as exc:  # no answer at all: as bad as a 5xx, and said so
                    report.no_answer.append(f"{name}: {type(exc).__name__}: {exc}"[:500])
                    return
                report.record(name, case, response.status_code)

            try:
                send()
            except hypothesis.errors.Unsatisfiable:
                pass  # an operation without inputs has no schema-breaking case
    report.wall_s = time.perf_counter() - started
    return report


def _jsonable(body) -> bool:
    try:
        json.dumps(body)
        return True
    except (TypeError, ValueError):
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1200, help="generated cases in all")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    args = parser.parse_args()
    from benchmarks.processes import free_port, running_server

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
