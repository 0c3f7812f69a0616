"""The engine over a fleet of `vllm serve` replicas (the scale-out path). Imports httpx and
transformers, never vLLM: a Deliberate in front of a fleet needs no vLLM install of its own."""

from engine.remote.engine import RemoteEngine, RemoteEngineConfig, open_remote_engine

__all__ = ["RemoteEngine", "RemoteEngineConfig", "open_remote_engine"]
