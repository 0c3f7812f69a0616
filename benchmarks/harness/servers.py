"""How the benchmarks' servers run beyond tests/servers.py (which starts them): the name the model
is served under, no admission limits for the benchmarks of search, one engine process for the
serving comparisons, and verifier plugins installed for one server only."""

from __future__ import annotations

from pathlib import Path

SERVED_NAME = "demo"
# A benchmark of search measures the search, not admission control: its clients wait for their
# turn however long the queue (no 429 after --queue-timeout-s), and no deadline cuts a search
# short for the time it waited. benchmarks.load_faults, which measures admission, keeps them.
UNBOUNDED_ADMISSION = ["--queue-timeout-s", "86400", "--request-timeout-s", "86400",
                       # the queues follow the measured drain rate: a slow drain (a shared
                       # machine) refused benchmark clients with 429 queue_full
                       "--search-queue", "100000000", "--single-pass-queue", "100000000"]
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


def listening_process(port: int):
    """The process (psutil) that listens on `port`: a server's API process, whose children are
    its engine."""
    import psutil

    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
            return psutil.Process(conn.pid)
    raise RuntimeError(f"nothing listens on port {port}")


def cpu_seconds(process) -> tuple[float, float]:
    """CPU seconds (user + system) used so far by `process` and by its children together."""
    import psutil

    def used(p) -> float:
        times = p.cpu_times()
        return times.user + times.system

    children = 0.0
    for child in process.children(recursive=True):
        try:
            children += used(child)
        except psutil.NoSuchProcess:
            continue
    return used(process), children
