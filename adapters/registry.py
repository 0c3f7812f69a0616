"""The adapter registry the server owns: which adapters exist, which are resident in the engine.

- `load` validates an adapter and registers it (resident at once); duplicates are refused.
- `acquire(model)` resolves a request's `model` to an adapter (loading it on demand through the
  filesystem resolver), makes it resident, evicting the least-recently-used unpinned adapter with
  no request in flight when the engine is full, and counts the request as in flight until released.
- `unload` waits for in-flight requests to finish, then answers 409 if some are still running.
- `reserve(name, owner)` marks a name the server's own components score with (the PRM, the ORM,
  the difficulty estimator); `refuse_reserved` keeps clients from unloading or replacing the
  adapter behind it, while the components still load it on demand.

Engine calls run outside the registry's bookkeeping, which changes only between awaits (one
event loop: no lock), so a slow load holds back only the requests that need that adapter (a
remote load reaches every replica). Callers that need one adapter loaded share the one task that
loads it: the engine is called once and each caller gets its outcome. Each engine call is bounded
by `call_timeout_s` (`AdapterTimeout`, 504), after which the adapter counts as not loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from adapters import metrics
from adapters.errors import (AdapterConflict, AdapterError, AdapterNotFound, AdapterReserved,
                             AdapterTimeout)
from adapters.manifest import read_manifest
from adapters.validation import (AdapterLimits, BaseModelInfo, ValidatedAdapter,
                                 load_prompt_embeddings, validate_adapter)
from engine.protocol import PromptAdapterEngine

log = logging.getLogger(__name__)


class AdapterEngine(Protocol):
    """The two engine operations the registry needs (the server's Engine provides them); prompt
    adapters also need `engine.protocol.PromptAdapterEngine.add_prompt_adapter`."""

    async def add_adapter(self, name: str, path: str) -> None: ...

    async def remove_adapter(self, name: str) -> None: ...


@dataclass(eq=False)
class AdapterRecord:
    adapter: ValidatedAdapter
    pinned: bool = False
    resident: bool = False  # the engine has it
    in_flight: int = 0
    last_used: float = field(default_factory=time.monotonic)
    created: int = field(default_factory=lambda: int(time.time()))
    # the engine call under way for it, which callers wait for instead of repeating it
    adding: asyncio.Task | None = None
    removing: asyncio.Task | None = None

    @property
    def holds_slot(self) -> bool:
        """Takes one of the engine's LoRA slots, or will once its add is done (a prompt adapter
        takes none: it is a few embeddings; one being evicted has given its slot to the add
        that waits for the eviction)."""
        return self.adapter.kind == "lora" and (self.resident or self.adding is not None)


class AdapterRegistry:
    def __init__(self, engine: AdapterEngine, base_name: str, base: BaseModelInfo,
                 limits: AdapterLimits, capacity: int, resolver_root: Path | None = None,
                 unload_wait_s: float = 5.0, call_timeout_s: float = 60.0) -> None:
        self._engine = engine
        self._base_name = base_name
        self._base = base
        self._limits = limits
        self._capacity = capacity
        self._resolver_root = resolver_root
        self._unload_wait_s = unload_wait_s
        self._call_timeout_s = call_timeout_s
        self._records: dict[str, AdapterRecord] = {}
        self._loading: dict[str, asyncio.Task[AdapterRecord]] = {}  # first loads under way
        self._arriving: set[AdapterRecord] = set()  # their records: not registered, in a slot
        self._reserved: dict[str, str] = {}  # adapter name -> the component that scores with it
        self._drained = asyncio.Condition()

    @property
    def base_name(self) -> str:
        return self._base_name

    def names(self) -> list[str]:
        return list(self._records)

    def records(self) -> dict[str, AdapterRecord]:
        return dict(self._records)

    def reserve(self, name: str, owner: str) -> None:
        self._reserved.setdefault(name, owner)

    def refuse_reserved(self, name: str, unloading: bool) -> None:
        """For the load/unload endpoints. A reserved name is the server's once it has one: from
        `--lora-modules`, the resolver root, or a first load over the API (how an operator gives
        a bring-your-own model its reward model); then it is never unloaded or replaced."""
        owner = self._reserved.get(name)
        if owner is None or not (unloading or name in self._records or self._resolvable(name)):
            return
        raise AdapterReserved(
            f"{name!r} is the adapter {owner} scores with; while the server runs it cannot be "
            "unloaded or replaced over the API (set another at start with --lora-modules "
            f"{name}=PATH); choose another lora_name.", param="lora_name")

    async def load(self, name: str, path: str, pinned: bool = False) -> ValidatedAdapter:
        if name == self._base_name or name in self._records or name in self._loading:
            metrics.ADAPTER_LOADS.labels(result=AdapterConflict.code).inc()
            raise AdapterConflict(f"an adapter or model named {name!r} is already loaded (or "
                                  "loading); unload it first or choose another lora_name.",
                                  param="lora_name")
        record = await asyncio.shield(self._start_load(name, path, pinned))
        return record.adapter

    async def unload(self, name: str) -> None:
        record = self._records.get(name)
        if record is None:
            if name in self._loading:
                raise AdapterConflict(f"adapter {name!r} is still loading; retry the unload "
                                      "once it has loaded.", param="lora_name")
            raise AdapterNotFound(f"no adapter named {name!r} is loaded; loaded: "
                                  f"{sorted(self._records) or 'none'}.", param="lora_name")
        async with self._drained:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait_for(lambda: record.in_flight == 0),
                                       self._unload_wait_s)
        if record.in_flight:
            raise AdapterConflict(f"adapter {name!r} still has {record.in_flight} request(s) "
                                  f"in flight after {self._unload_wait_s:.0f} s; retry later.",
                                  param="lora_name")
        if self._records.get(name) is not record:  # another unload took it meanwhile
            raise AdapterNotFound(f"adapter {name!r} was unloaded meanwhile.", param="lora_name")
        del self._records[name]  # no new request finds it from here
        self._update_gauge()
        # an eviction, or an add whose requests all left, may still be running: let it end
        calls = {call for call in (record.adding, record.removing) if call is not None}
        if calls:
            await asyncio.wait(calls)
        if record.resident:
            record.resident = False
            async with self._bounded(f"unloading adapter {name!r}"):
                await self._engine.remove_adapter(name)

    def is_known(self, model: str) -> bool:
        return (model == self._base_name or model in self._records or model in self._loading
                or self._resolvable(model))

    @contextlib.asynccontextmanager
    async def acquire(self, model: str) -> AsyncIterator[str | None]:
        """Yield the adapter name for `model` (None for the base), resident for the duration."""
        if model == self._base_name:
            yield None
            return
        record = self._records.get(model)
        if record is None:
            if model not in self._loading:
                if not self._resolvable(model):
                    raise AdapterNotFound(f"The model `{model}` does not exist.", param="model")
                self._start_load(model, str(self._resolver_root / model), pinned=False)
            await asyncio.shield(self._loading[model])
            record = self._records.get(model)
            if record is None:  # unloaded between its load and this request's turn
                raise AdapterNotFound(f"The model `{model}` does not exist.", param="model")
        record.in_flight += 1
        record.last_used = time.monotonic()
        metrics.ADAPTER_REQUESTS.labels(adapter=model).inc()
        try:
            await self._make_resident(record)
            yield model
        finally:
            record.in_flight -= 1
            async with self._drained:
                self._drained.notify_all()

    def skills(self, model: str) -> dict | None:
        """What the adapter `model` declares it is good at (its manifest's `skills`: task
        families, a description, example questions), loaded or resolvable; None if nothing."""
        record = self._records.get(model)
        if record is not None:
            where: Path | None = record.adapter.path
        elif self._resolvable(model):
            where = self._resolver_root / model
        else:
            return None
        try:
            manifest = read_manifest(where)
        except (OSError, ValueError):  # unreadable: it declares nothing
            return None
        skills = (manifest or {}).get("skills")
        return skills if isinstance(skills, dict) else None

    def declaring(self) -> list[str]:
        """Adapters, loaded or resolvable, whose manifests declare skills."""
        names = set(self._records)
        if self._resolver_root is not None and self._resolver_root.is_dir():
            names |= {p.name for p in self._resolver_root.iterdir() if self._resolvable(p.name)}
        return sorted(n for n in names if self.skills(n) is not None)

    def _resolvable(self, model: str) -> bool:
        if self._resolver_root is None or "/" in model or model.startswith("."):
            return False
        return (self._resolver_root / model / "adapter_config.json").is_file()

    def _start_load(self, name: str, path: str, pinned: bool) -> asyncio.Task[AdapterRecord]:
        """The first load of `name`, as a task every caller that needs it waits on."""
        self._loading[name] = asyncio.create_task(self._register(name, path, pinned))
        return self._loading[name]

    async def _register(self, name: str, path: str, pinned: bool) -> AdapterRecord:
        try:
            adapter = await asyncio.to_thread(validate_adapter, name, path, self._base,
                                              self._limits)
            record = AdapterRecord(adapter=adapter, pinned=pinned)
            self._arriving.add(record)
            try:
                await self._make_resident(record)
            finally:
                self._arriving.discard(record)
            self._records[name] = record
        except AdapterError as exc:
            metrics.ADAPTER_LOADS.labels(result=exc.code).inc()
            raise
        except Exception:
            metrics.ADAPTER_LOADS.labels(result="engine_error").inc()
            raise
        finally:
            self._loading.pop(name, None)
        metrics.ADAPTER_LOADS.labels(result="ok").inc()
        self._update_gauge()
        return record

    async def _make_resident(self, record: AdapterRecord) -> None:
        """Returns once the engine has `record`'s adapter: joins the add under way, or starts
        one (after its eviction, if one is under way)."""
        while not record.resident:
            if record.removing is not None:
                await asyncio.wait({record.removing})  # its outcome is the evicting add's
            elif record.adding is not None:
                await asyncio.shield(record.adding)
            else:
                evictions = self._make_room() if record.adapter.kind == "lora" else []
                record.adding = asyncio.create_task(self._add(record, evictions))

    def _make_room(self) -> list[asyncio.Task]:
        """Frees one LoRA slot: starts evicting the least-recently-used unpinned idle adapters
        while the slots are full, or refuses if none can go (nothing changed then)."""
        held = [r for r in (*self._records.values(), *self._arriving) if r.holds_slot]
        idle = sorted((r for r in held if r.resident and r.adding is None and not r.pinned
                       and r.in_flight == 0), key=lambda r: r.last_used)
        excess = len(held) - self._capacity + 1
        if excess > len(idle):
            raise AdapterConflict(
                f"all {self._capacity} adapter slots are pinned or busy; retry later or "
                "start the server with more --max-loras.", param="model")
        evictions = []
        for victim in idle[:max(excess, 0)]:
            victim.resident = False
            victim.removing = asyncio.create_task(self._evict(victim))
            evictions.append(victim.removing)
        return evictions

    async def _add(self, record: AdapterRecord, evictions: list[asyncio.Task]) -> None:
        adapter = record.adapter
        try:
            if evictions:
                await asyncio.wait(evictions)
            async with self._bounded(f"loading adapter {adapter.name!r}"):
                if adapter.kind == "prompt":
                    await self._add_prompt_adapter(adapter)
                else:
                    await self._engine.add_adapter(adapter.name, str(adapter.path))
            record.resident = True
        finally:
            record.adding = None

    async def _evict(self, record: AdapterRecord) -> None:
        """Never raises: the engines forget an adapter before they ask their backend to remove
        it, so one whose removal failed is gone all the same, and its slot may be reused."""
        name = record.adapter.name
        metrics.ADAPTER_EVICTIONS.inc()
        try:
            async with self._bounded(f"evicting adapter {name!r}"):
                await self._engine.remove_adapter(name)
        except Exception as error:  # noqa: BLE001 - logged; the add that waits goes ahead
            log.warning("evicting adapter %r failed: %s", name, error)
        finally:
            record.removing = None

    @contextlib.asynccontextmanager
    async def _bounded(self, what: str) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self._call_timeout_s):
                yield
        except TimeoutError:
            raise AdapterTimeout(
                f"the engine took more than {self._call_timeout_s:g} s {what} "
                "(--adapter-timeout-s); retry later", param=None) from None

    async def _add_prompt_adapter(self, adapter: ValidatedAdapter) -> None:
        if not isinstance(self._engine, PromptAdapterEngine):
            raise AdapterError(f"{adapter.path} is a prompt adapter, which this engine cannot "
                               "serve (prompt embeddings need the local vLLM engine).")
        embeddings = await asyncio.to_thread(load_prompt_embeddings, adapter)
        await self._engine.add_prompt_adapter(adapter.name, embeddings)

    def _update_gauge(self) -> None:
        metrics.ADAPTERS_LOADED.set(len(self._records))
