"""The remote engine's configuration from the settings, for the policy's fleet (`--upstream`)
and for each reward model's (its `engine.upstreams`): one translation, so that every fleet gets
the same key, timeouts, health probes and routing. Imported only when a fleet is used: it
imports the remote engine (httpx, transformers)."""

from __future__ import annotations

from collections.abc import Sequence

from engine.remote import RemoteEngineConfig
from server.settings import Settings


def fleet_config(settings: Settings, upstreams: Sequence[str], tokenizer: str,
                 served_model_name: str) -> RemoteEngineConfig:
    return RemoteEngineConfig(
        upstreams=tuple(upstreams), tokenizer=tokenizer, served_model_name=served_model_name,
        api_key=settings.upstream_api_key, timeout_s=settings.upstream_timeout_s,
        health_interval_s=settings.upstream_health_interval_s,
        start_timeout_s=settings.upstream_start_timeout_s,
        prefix_tokens=settings.affinity_prefix_tokens, slack=settings.affinity_slack,
        routing=settings.upstream_routing)
