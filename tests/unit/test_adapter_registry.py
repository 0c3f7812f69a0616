"""Adapter registry against a fake engine: duplicates, on-demand resolution, LRU with pinning,
unloading with requests in flight, slow and failing engine calls."""

import asyncio

import numpy as np
import pytest
from safetensors.numpy import save_file

from adapters import metrics
from adapters.errors import AdapterConflict, AdapterNotFound, AdapterTimeout
from adapters.registry import AdapterRegistry
from adapters.validation import AdapterLimits, read_base_model_info
from tests.unit.test_adapter_validation import make_adapter


class FakeSlots:
    def __init__(self):
        self.resident: list[str] = []
        self.calls: list[tuple[str, str]] = []
        self.gates: dict[str, asyncio.Event] = {}  # an add of the name waits for its event
        self.refuse: dict[str, Exception] = {}  # then raises this

    async def add_adapter(self, name, path):
        self.calls.append(("add", name))
        if name in self.gates:
            await self.gates[name].wait()
        if name in self.refuse:
            raise self.refuse[name]
        self.resident.append(name)

    async def remove_adapter(self, name):
        self.calls.append(("remove", name))
        self.resident.remove(name)  # forgotten first, as the engines do
        if name in self.gates:
            await self.gates[name].wait()


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "adapters"
    for name in "abcd":
        make_adapter(root / name)
    return root


@pytest.fixture
def engine():
    return FakeSlots()


@pytest.fixture
def registry(tmp_path, root, engine):
    base_dir = tmp_path / "base"
    base_dir.mkdir()
    save_file({"model.layers.0.self_attn.q_proj.weight": np.zeros((8, 6), np.float32)},
              str(base_dir / "model.safetensors"))
    return AdapterRegistry(engine, "demo", read_base_model_info(base_dir),
                           AdapterLimits((root,), max_rank=8, max_bytes=1 << 20), capacity=2,
                           resolver_root=root, unload_wait_s=0.2, call_timeout_s=0.2)


async def test_load_registers_and_duplicates_are_refused(registry, root, engine):
    before = metrics.ADAPTER_LOADS.labels(result="ok")._value.get()
    await registry.load("a", str(root / "a"))
    assert registry.names() == ["a"] and engine.resident == ["a"]
    assert metrics.ADAPTER_LOADS.labels(result="ok")._value.get() == before + 1
    with pytest.raises(AdapterConflict):
        await registry.load("a", str(root / "b"))
    with pytest.raises(AdapterConflict):
        await registry.load("demo", str(root / "b"))


async def test_base_model_acquires_no_adapter(registry):
    async with registry.acquire("demo") as adapter:
        assert adapter is None


async def test_unknown_model_is_404_and_resolver_loads_on_demand(registry, engine):
    with pytest.raises(AdapterNotFound):
        async with registry.acquire("nope"):
            pass
    async with registry.acquire("c") as adapter:
        assert adapter == "c" and engine.resident == ["c"]
    for sneaky in ("../c", "/etc", ".hidden"):
        assert not registry.is_known(sneaky)


async def test_lru_eviction_spares_pinned_and_busy_adapters(registry, root, engine):
    await registry.load("a", str(root / "a"), pinned=True)
    await registry.load("b", str(root / "b"))
    async with registry.acquire("c"):  # full: evicts b (a is pinned)
        assert engine.resident == ["a", "c"]
        with pytest.raises(AdapterConflict, match="pinned or busy"):
            async with registry.acquire("d"):  # a pinned, c busy: no slot
                pass
    async with registry.acquire("b"):  # b comes back, evicting c (least recently used)
        assert sorted(engine.resident) == ["a", "b"]
    assert ("remove", "c") in engine.calls


async def test_unload_waits_for_in_flight_then_409(registry, root, engine):
    await registry.load("a", str(root / "a"))
    async with registry.acquire("a"):
        with pytest.raises(AdapterConflict, match="in flight"):
            await registry.unload("a")
    assert registry.names() == ["a"]

    async def finish_soon():
        async with registry.acquire("a"):
            await asyncio.sleep(0.05)

    task = asyncio.create_task(finish_soon())
    await asyncio.sleep(0.01)
    await registry.unload("a")  # waits for the request, then unloads
    await task
    assert registry.names() == [] and engine.resident == []
    with pytest.raises(AdapterNotFound):
        await registry.unload("a")


async def started(coroutine) -> asyncio.Task:
    """`coroutine` running in a task of its own, given a turn to reach its first wait."""
    task = asyncio.create_task(coroutine)
    await asyncio.sleep(0.01)
    return task


async def use(registry, model):
    async with registry.acquire(model) as adapter:
        return adapter


async def test_a_slow_load_holds_back_only_the_requests_for_that_adapter(registry, root, engine):
    engine.gates["a"] = asyncio.Event()
    slow = await started(use(registry, "a"))  # the engine takes its time to load a
    async with asyncio.timeout(1):
        assert await use(registry, "b") == "b"  # loaded on demand meanwhile
        assert await use(registry, "demo") is None
        await registry.load("c", str(root / "c"))  # evicts b: a holds the other slot
    assert not slow.done() and sorted(engine.resident) == ["c"]
    engine.gates["a"].set()
    assert await slow == "a" and sorted(engine.resident) == ["a", "c"]


async def test_concurrent_loads_of_one_adapter_call_the_engine_once(registry, engine):
    engine.gates["c"] = asyncio.Event()
    first, second = await started(use(registry, "c")), await started(use(registry, "c"))
    engine.gates["c"].set()
    assert await first == await second == "c"
    assert engine.calls == [("add", "c")]
    # a refusal is each caller's: not one engine call per caller
    engine.gates["d"], engine.refuse["d"] = asyncio.Event(), RuntimeError("engine refused d")
    first, second = await started(use(registry, "d")), await started(use(registry, "d"))
    engine.gates["d"].set()
    for waiter in (first, second):
        with pytest.raises(RuntimeError, match="engine refused d"):
            await waiter
    assert engine.calls == [("add", "c"), ("add", "d")] and registry.names() == ["c"]


async def test_a_request_that_leaves_during_the_load_does_not_undo_it(registry, engine):
    engine.gates["c"] = asyncio.Event()
    leaving = await started(use(registry, "c"))
    leaving.cancel()
    engine.gates["c"].set()
    await asyncio.sleep(0.01)
    assert registry.names() == ["c"] and engine.resident == ["c"]
    assert await use(registry, "c") == "c" and engine.calls == [("add", "c")]


async def test_an_engine_call_past_the_timeout_is_a_504_and_the_registry_stays_right(
        registry, root, engine):
    engine.gates["a"] = asyncio.Event()  # never set: the engine hangs on a
    for _ in range(2):
        with pytest.raises(AdapterTimeout, match=r"more than 0.2 s loading adapter 'a'") as error:
            await registry.load("a", str(root / "a"))
        assert error.value.status_code == 504 and registry.names() == []
    with pytest.raises(AdapterTimeout):
        await use(registry, "a")  # on demand, the same
    # the slots it never took are free: two adapters load without an eviction
    await registry.load("b", str(root / "b"))
    await registry.load("c", str(root / "c"))
    assert engine.resident == ["b", "c"] and ("remove", "b") not in engine.calls
    engine.gates["a"].set()  # the engine recovers: a loads, evicting b
    assert await use(registry, "a") == "a" and sorted(engine.resident) == ["a", "c"]


async def test_an_unload_past_the_timeout_is_a_504_and_the_adapter_is_gone(registry, root,
                                                                           engine):
    await registry.load("a", str(root / "a"))
    engine.gates["a"] = asyncio.Event()
    with pytest.raises(AdapterTimeout, match="unloading adapter 'a'"):
        await registry.unload("a")
    assert registry.names() == [] and engine.resident == []
    with pytest.raises(AdapterNotFound):
        await registry.unload("a")
