"""How the benchmarks' servers run beyond tests/servers.py (which starts them): the name the model
is served under, no admission limits for the benchmarks of search, one engine process for the
serving comparisons, and verifier plugins installed for one server only."""

from __future__ import annotations

from pathlib import Path

SERVED_NAME = "demo"
# A benchmark of search measures the search, not admission control: its clients wait for their
# turn however long the queue (no 429 after --queue-timeout-s), and no deadline cuts a search
# short for the time it waited. benchmarks.load_faults, which measures admission, keeps them.
UNBOUNDED_ADMISSION = ["--queue-timeout-s", "86400", "--request-timeout-s", "86400"]
# The same engine configuration on both sides of a serving comparison, so that only the serving
# layer differs: eager mode, one engine-core process (Deliberate's defaults).
ENGINE_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}


def install_verifier_plugins(directory: Path, dist: str, plugins: dict[str, str]) -> Path:
    """A dist-info in `directory` registering `plugins` (name -> "module:Class") in the
    verifier entry-point group: a server started with `directory` on its PYTHONPATH loads
    them, and nothing else does."""
    info = directory / f"{dist.replace('-', '_')}-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0\n")
    entries = "".join(f"{name} = {target}\n" for name, target in plugins.items())
    (info / "entry_points.txt").write_text(f"[deliberate.verifiers]\n{entries}")
    return directory
