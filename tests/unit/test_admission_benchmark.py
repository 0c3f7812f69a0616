"""The admission benchmark's own parts: how it sends a burst, and how it reads the server's
refusals and its kill phase's capacity."""

import json

import pytest

from benchmarks.admission import capacity_back_s


def sample(t: float, capacity: int) -> dict:
    return {"t": t, "capacity{search}": capacity}


def test_the_capacity_is_back_at_the_first_sample_after_its_lowest_at_its_first_value():
    samples = [sample(0, 8192), sample(10, 4096), sample(20, 4096), sample(65, 8192),
               sample(140, 8192)]
    assert capacity_back_s(samples) == 65  # not the end of the burst
    assert capacity_back_s(samples[:3]) is None  # never back while sampled
    assert capacity_back_s([]) is None


async def test_a_burst_is_sent_from_a_client_per_twenty_requests(monkeypatch):
    # one httpx pool of 640 connections cost the benchmark more CPU than the server spent
    import httpx

    from benchmarks import admission

    pools: list[list[str]] = []  # per client, the requests it sent

    def client(url: str, connections: int) -> httpx.AsyncClient:
        sent: list[str] = []
        pools.append(sent)

        def answer(request: httpx.Request) -> httpx.Response:
            sent.append(request.content.decode())
            return httpx.Response(200, json={})
        assert connections == admission.CLIENT_REQUESTS
        return httpx.AsyncClient(base_url=url, transport=httpx.MockTransport(answer))

    monkeypatch.setattr(admission, "client", client)
    requests = admission.burst_requests(45, seed=3)
    outcomes, sent = await admission.concurrent("http://server", requests)
    assert [o.final for o in outcomes] == [200] * 45
    assert [len(p) for p in pools] == [20, 20, 5]
    def canonical(body: dict) -> str:
        return json.dumps(body, sort_keys=True)
    assert sorted(canonical(json.loads(b)) for b in sum(pools, [])) == \
        sorted(canonical(r) for _, r in requests)  # each sent once
    assert sent["wall_s"] >= 0 and sent["client_cpu_s"] >= 0


def test_the_server_side_refusals_are_read_from_the_histograms_difference():
    from benchmarks.admission import server_refusals

    inf = float("inf")
    before = {0.5: 2.0, 1.0: 3.0, 2.5: 3.0, inf: 3.0}
    after = {0.5: 10.0, 1.0: 13.0, 2.5: 14.0, inf: 14.0}
    assert server_refusals(before, after) == {"count": 11, "within_1s": 10,
                                              "slowest_at_most_s": 2.5}
    assert server_refusals(after, after)["count"] == 0


async def test_a_phase_reads_the_servers_side_around_its_work(monkeypatch):
    from benchmarks import admission

    inf = float("inf")
    readings = iter([{1.0: 0.0, inf: 0.0}, {1.0: 3.0, inf: 4.0}])
    cpu = iter([10.0, 12.5])
    monkeypatch.setattr(admission, "refusal_buckets", lambda url: next(readings))
    monkeypatch.setattr(admission, "api_cpu_s", lambda url: next(cpu))

    async def work() -> str:
        return "outcomes"

    result, server = await admission.server_side("http://server:1", work())
    assert result == "outcomes"
    assert server == {"api_cpu_s": 2.5, "server_refusals": {
        "count": 4, "within_1s": 3, "slowest_at_most_s": inf}}


def test_the_server_process_is_found_past_a_child_that_ended(monkeypatch):
    import psutil

    from benchmarks import admission

    class Child:
        def __init__(self, command, pid):
            self.command, self.pid = command, pid

        def cmdline(self):
            if self.command is None:  # the killed replica, not reaped yet
                raise psutil.ZombieProcess(self.pid)
            return self.command

    server = Child(["python", "-m", "server", "--port", "8123"], 3)
    children = [Child(None, 1), Child(["vllm", "serve", "--port", "8124"], 2), server]
    monkeypatch.setattr(admission.psutil, "Process",
                        lambda: type("Me", (), {"children": lambda self, recursive: children})())
    assert admission.process_on(8123) is server
    with pytest.raises(LookupError):
        admission.process_on(9999)
