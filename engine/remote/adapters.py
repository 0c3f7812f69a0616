"""The fleet's LoRA adapters: loads and unloads reach every replica in rotation, and a replica
that comes back is reconciled (from its /v1/models) to the set this engine has loaded.

vLLM loads an adapter from a path on the replica's own disk: adapter paths must be on storage
every replica sees (the same path: a shared volume, NFS, a baked-in image directory). A replica
that cannot read it refuses the load; that refusal is the caller's 4xx, naming the replica.
Replicas need `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True` and `--enable-lora`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import httpx

from engine.protocol import AdapterInfo, EngineUnavailable, InvalidEngineRequest
from engine.remote import metrics
from engine.remote.routing import Replica

log = logging.getLogger(__name__)


class FleetAdapters:
    def __init__(self, replicas: Sequence[Replica], http: httpx.AsyncClient,
                 eject: Callable[[Replica, str], None]) -> None:
        self._replicas = replicas
        self._http = http
        self._eject = eject
        self.loaded: dict[str, str] = {}  # name -> path, what every replica in rotation serves
        self._removed: set[str] = set()  # unloaded here: unload from a replica that missed it

    async def add(self, name: str, path: str) -> None:
        targets = [r for r in self._replicas if r.healthy]
        if not targets:
            raise EngineUnavailable("no upstream vLLM replica is answering; retry shortly")
        results = await asyncio.gather(*(self._load(r, name, path) for r in targets))
        refusals = [(r, message) for r, message in zip(targets, results) if message]
        if refusals:
            # all or none: a replica without it would fail the requests routed to it
            await asyncio.gather(*(self._unload(r, name) for r, message in
                                   zip(targets, results) if message is None and r.healthy))
            replica, message = refusals[0]
            raise InvalidEngineRequest(
                f"upstream {replica.url} refused adapter {name!r} ({message}); its path must "
                f"be readable by every replica at {path!r} (shared storage)")
        if not any(r.healthy for r in targets):
            raise EngineUnavailable("every upstream vLLM replica failed while loading the adapter")
        self.loaded[name] = path
        self._removed.discard(name)

    async def remove(self, name: str) -> None:
        self.loaded.pop(name, None)
        self._removed.add(name)
        await asyncio.gather(*(self._unload(r, name) for r in self._replicas if r.healthy))

    def list(self) -> list[AdapterInfo]:
        return [AdapterInfo(name, path) for name, path in self.loaded.items()]

    async def reconcile(self, replica: Replica) -> None:
        """Brings a replica that is coming back to the loaded set; raises if it cannot."""
        response = await self._http.get(f"{replica.url}/v1/models")
        response.raise_for_status()
        present = {m["id"] for m in response.json()["data"] if m.get("parent")}
        for name, path in list(self.loaded.items()):
            if name not in present:
                message = await self._load(replica, name, path, probing=True)
                if message:
                    raise RuntimeError(f"reloading adapter {name!r} failed: {message}")
                metrics.ADAPTER_RELOADS.labels(replica.url).inc()
        for name in self._removed & present:
            await self._unload(replica, name)

    async def _load(self, replica: Replica, name: str, path: str, probing: bool = False
                    ) -> str | None:
        """None when the replica serves the adapter, else its refusal (a 4xx's message)."""
        try:
            response = await self._http.post(f"{replica.url}/v1/load_lora_adapter",
                                             json={"lora_name": name, "lora_path": path})
        except httpx.HTTPError as error:
            if probing:
                raise
            self._eject(replica, f"adapter load failed ({type(error).__name__})")
            return None
        if response.status_code < 300 or "already been loaded" in response.text:
            return None
        if response.status_code >= 500 and not probing:
            self._eject(replica, f"adapter load answered {response.status_code}")
            return None
        if response.status_code == 404:
            return ("404: the replica does not offer runtime adapter loading; start it with "
                    "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True and --enable-lora")
        return f"{response.status_code}: {upstream_message(response)}"

    async def _unload(self, replica: Replica, name: str) -> None:
        try:
            await self._http.post(f"{replica.url}/v1/unload_lora_adapter",
                                  json={"lora_name": name})
        except httpx.HTTPError as error:  # it is reconciled when it comes back
            log.warning("unloading %r from %s failed: %s", name, replica.url, error)


def upstream_message(response: httpx.Response) -> str:
    """The message of vLLM's error body ({"error": {"message"}}), else the body's text."""
    try:
        error = response.json().get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    except ValueError:
        pass
    return response.text.strip()[:500] or response.reason_phrase
