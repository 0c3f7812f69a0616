"""The adapter registry the server owns: which adapters exist, which are resident in the engine.

- `load` validates an adapter and registers it (resident at once); duplicates are refused.
- `acquire(model)` resolves a request's `model` to an adapter (loading it on demand through the
  filesystem resolver), makes it resident, evicting the least-recently-used unpinned adapter with
  no request in flight when the engine is full, and counts the request as in flight until released.
- `unload` waits for in-flight requests to finish, then answers 409 if some are still running.
- `reserve(name, owner)` marks a name the server's own components score with (the PRM, the ORM,
  the difficulty estimator); `refuse_reserved` keeps clients from unloading or replacing the
  adapter behind it, while the components still load it on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from adapters import metrics
from adapters.errors import AdapterConflict, AdapterError, AdapterNotFound, AdapterReserved
from adapters.validation import (AdapterLimits, BaseModelInfo, ValidatedAdapter,
                                 load_prompt_embeddings, validate_adapter)
from engine.protocol import PromptAdapterEngine


class AdapterEngine(Protocol):
    """The two engine operations the registry needs (the server's Engine provides them); prompt
    adapters also need `engine.protocol.PromptAdapterEngine.add_prompt_adapter`."""

    async def add_adapter(self, name: str, path: str) -> None: ...

    async def remove_adapter(self, name: str) -> None: ...


@dataclass
class AdapterRecord:
    adapter: ValidatedAdapter
    pinned: bool = False
    resident: bool = False
    in_flight: int = 0
    last_used: float = field(default_factory=time.monotonic)
    created: int = field(default_factory=lambda: int(time.time()))


class AdapterRegistry:
    def __init__(self, engine: AdapterEngine, base_name: str, base: BaseModelInfo,
                 limits: AdapterLimits, capacity: int, resolver_root: Path | None = None,
                 unload_wait_s: float = 5.0) -> None:
        self._engine = engine
        self._base_name = base_name
        self._base = base
        self._limits = limits
        self._capacity = capacity
        self._resolver_root = resolver_root
        self._unload_wait_s = unload_wait_s
        self._records: dict[str, AdapterRecord] = {}
        self._reserved: dict[str, str] = {}  # adapter name -> the component that scores with it
        self._lock = asyncio.Lock()  # serialises residency changes
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
        try:
            if name == self._base_name or name in self._records:
                raise AdapterConflict(f"an adapter or model named {name!r} is already loaded; "
                                      "unload it first or choose another lora_name.",
                                      param="lora_name")
            adapter = await asyncio.to_thread(validate_adapter, name, path, self._base,
                                              self._limits)
            async with self._lock:
                if name in self._records:  # raced with another load of the same name
                    raise AdapterConflict(f"an adapter named {name!r} is already loaded.",
                                          param="lora_name")
                record = AdapterRecord(adapter=adapter, pinned=pinned)
                await self._make_resident(record)
                self._records[name] = record
        except AdapterError as exc:
            metrics.ADAPTER_LOADS.labels(result=exc.code).inc()
            raise
        except Exception:
            metrics.ADAPTER_LOADS.labels(result="engine_error").inc()
            raise
        metrics.ADAPTER_LOADS.labels(result="ok").inc()
        self._update_gauge()
        return adapter

    async def unload(self, name: str) -> None:
        record = self._records.get(name)
        if record is None:
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
        async with self._lock:
            self._records.pop(name, None)
            if record.resident:
                await self._engine.remove_adapter(name)
        self._update_gauge()

    def is_known(self, model: str) -> bool:
        return model == self._base_name or model in self._records or self._resolvable(model)

    @contextlib.asynccontextmanager
    async def acquire(self, model: str) -> AsyncIterator[str | None]:
        """Yield the adapter name for `model` (None for the base), resident for the duration."""
        if model == self._base_name:
            yield None
            return
        record = self._records.get(model)
        if record is None:
            if not self._resolvable(model):
                raise AdapterNotFound(f"The model `{model}` does not exist.", param="model")
            try:
                await self.load(model, str(self._resolver_root / model))
            except AdapterConflict:
                if model not in self._records:  # not a concurrent load of the same adapter
                    raise
            record = self._records[model]
        record.in_flight += 1
        record.last_used = time.monotonic()
        metrics.ADAPTER_REQUESTS.labels(adapter=model).inc()
        try:
            if not record.resident:
                async with self._lock:
                    await self._make_resident(record)
            yield model
        finally:
            record.in_flight -= 1
            async with self._drained:
                self._drained.notify_all()

    def _resolvable(self, model: str) -> bool:
        if self._resolver_root is None or "/" in model or model.startswith("."):
            return False
        return (self._resolver_root / model / "adapter_config.json").is_file()

    async def _make_resident(self, record: AdapterRecord) -> None:
        """Called under the lock. Evicts LRU unpinned idle LoRAs while the engine's LoRA slots
        are full (a prompt adapter takes no slot: it is a few embeddings)."""
        if record.resident:
            return
        if record.adapter.kind == "prompt":
            await self._add_prompt_adapter(record.adapter)
            record.resident = True
            return
        resident = [r for r in self._records.values() if r.resident and r.adapter.kind == "lora"]
        while len(resident) >= self._capacity:
            idle = [r for r in resident if not r.pinned and r.in_flight == 0]
            if not idle:
                raise AdapterConflict(
                    f"all {self._capacity} adapter slots are pinned or busy; retry later or "
                    "start the server with more --max-loras.", param="model")
            victim = min(idle, key=lambda r: r.last_used)
            await self._engine.remove_adapter(victim.adapter.name)
            victim.resident = False
            metrics.ADAPTER_EVICTIONS.inc()
            resident.remove(victim)
        await self._engine.add_adapter(record.adapter.name, str(record.adapter.path))
        record.resident = True

    async def _add_prompt_adapter(self, adapter: ValidatedAdapter) -> None:
        if not isinstance(self._engine, PromptAdapterEngine):
            raise AdapterError(f"{adapter.path} is a prompt adapter, which this engine cannot "
                               "serve (prompt embeddings need the local vLLM engine).")
        embeddings = await asyncio.to_thread(load_prompt_embeddings, adapter)
        await self._engine.add_prompt_adapter(adapter.name, embeddings)

    def _update_gauge(self) -> None:
        metrics.ADAPTERS_LOADED.set(len(self._records))
