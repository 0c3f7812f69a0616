"""Schema fuzzing: schemathesis generates requests from a server's OpenAPI schema, valid ones and
ones that break it, for every operation, and sends them to the server
(tests/integration/test_fuzz.py against the shared test server, a few cases each;
`python -m benchmarks.fuzz` over a thousand).

Most generated bodies name a model that does not exist (a 404 before the engine); `aim` sends
three in four of them to the served model instead, so that the generated numbers, strings and
options reach validation, search and the engine. `SERVER_FLAGS` are small caps for a server
started to be fuzzed, so that a valid case costs seconds, not minutes; values past a cap are
400s, which is fuzzed too. Against a server with the default caps, `clamp` keeps each case as
cheap.
"""

from __future__ import annotations

import collections
import hashlib
import json
import time
from dataclasses import dataclass, field

MODEL = "demo"
API_KEY, ADMIN_KEY = "fuzz-key", "fuzz-admin"
SERVER_FLAGS = ["--max-tokens-limit", "32", "--max-n", "4", "--max-search-tokens", "512",
                "--max-simulations", "4", "--max-beam-width", "3", "--max-depth", "4",
                "--max-candidates", "4", "--max-search-timeout-s", "5",
                "--max-search-nodes", "64", "--request-timeout-s", "60",
                "--api-key", API_KEY, "--admin-api-key", ADMIN_KEY]
ADMIN_PATHS = {"/v1/load_lora_adapter", "/v1/unload_lora_adapter", "/v1/reload_safety_policy"}
# per-case caps `clamp` applies (CI, against the shared server's default caps)
CHEAP = {"max_tokens": 16, "max_completion_tokens": 16, "max_output_tokens": 16, "n": 2, "logprobs": 2, "top_logprobs": 2,
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
