"""Builds the adapter registry from the settings, preloads `--lora-modules`, and reserves the
adapters the server's own scorers use."""

from __future__ import annotations

from pathlib import Path

from adapters.errors import AdapterError
from adapters.registry import AdapterEngine, AdapterRegistry
from adapters.validation import AdapterLimits, read_base_model_info
from server.settings import Settings
from verifiers.registry import VerifierRegistry


async def build_registry(settings: Settings, engine: AdapterEngine) -> AdapterRegistry:
    registry = AdapterRegistry(
        engine,
        base_name=settings.served_model_name,
        base=read_base_model_info(settings.model),
        limits=AdapterLimits(allowed_roots=tuple(Path(r) for r in settings.adapter_roots),
                             max_rank=settings.max_lora_rank,
                             max_bytes=settings.max_adapter_bytes,
                             max_virtual_tokens=settings.max_virtual_tokens),
        capacity=settings.max_adapters,
        resolver_root=Path(settings.adapter_resolver_root)
        if settings.enable_lora and settings.adapter_resolver_root else None,
        call_timeout_s=settings.adapter_timeout_s,
    )
    for module in settings.lora_modules:
        name, sep, path = module.partition("=")
        if not sep:
            raise ValueError(f"--lora-modules entries are NAME=PATH; got {module!r}")
        try:
            await registry.load(name, path, pinned=True)
        except AdapterError as exc:
            raise ValueError(f"--lora-modules {module!r}: {exc.message}") from exc
    return registry


def reserve_scoring_adapters(adapters: AdapterRegistry, verifiers: VerifierRegistry,
                              estimators: dict) -> None:
    """The adapters the server's verifiers and difficulty estimators score with are its own: a
    client swapping the PRM would change every tenant's scores."""
    components = [(f"the {name} verifier", verifiers.get(name)) for name in verifiers.names()]
    components += [(f"the {name} difficulty estimator", e) for name, e in estimators.items()]
    for owner, component in components:
        adapter = getattr(component, "adapter", None)
        if isinstance(adapter, str):
            adapters.reserve(adapter, owner)
