"""Starts the real server (vLLM engine included) once per test session.

DELIBERATE_TEST_MODEL picks the model (default: the committed demo model, models/demo/base).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port, running_server

ROOT = Path(__file__).resolve().parents[2]
DEMO_MODEL = ROOT / "models" / "demo" / "base"
MODEL = Path(os.environ.get("DELIBERATE_TEST_MODEL", DEMO_MODEL))
SERVED_NAME = "demo"
STARTUP_TIMEOUT_S = 180
# Every test server's settings (local and remote mode alike, so their answers can be compared).
# A generous verifier timeout: a PRM call that waits behind a busy engine still scores.
SERVER_FLAGS = ["--served-model-name", SERVED_NAME, "--max-n", "16", "--default-strategy",
                "greedy", "--verifier-timeout-s", "120"]


@dataclass(frozen=True)
class Server:
    url: str
    trained_demo_model: bool  # known answers can be asserted
    adapter_root: Path  # tests may load adapters from here (an allowed root)
    log_path: Path | None = None

    def metric(self, name: str) -> float:
        """A `vllm:` gauge or counter from /metrics (one engine, so one series)."""
        text = httpx.get(f"{self.url}/metrics").text
        match = re.search(rf"^{re.escape(name)}{{[^}}]*}} (\S+)$", text, re.M)
        assert match, f"{name} not in /metrics"
        return float(match.group(1))


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[Server]:
    adapter_root = tmp_path_factory.mktemp("adapters")
    with own_server(tmp_path_factory, "--adapter-roots", str(ROOT / "models"),
                    str(adapter_root), adapter_root=adapter_root) as started:
        yield started


@contextlib.contextmanager
def own_server(tmp_path_factory, *flags: str, adapter_root: Path | None = None,
               model: Path = MODEL) -> Iterator[Server]:
    """A server of its own (the session's settings plus `flags`), for tests that need a fresh
    engine, other settings, another model (`model`, e.g. a merged export), or to kill it."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    command = ["-m", "server", "--model", str(model), "--port", str(port), *SERVER_FLAGS, *flags]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELIBERATE_")}
    with running_server(command, port, log_path, env=env, timeout_s=STARTUP_TIMEOUT_S,
                        cwd=ROOT) as url:
        yield Server(url, trained_demo_model=model.resolve() == DEMO_MODEL.resolve(),
                     adapter_root=adapter_root or ROOT / "models", log_path=log_path)
