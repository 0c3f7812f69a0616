"""Adapter metrics, registered in prometheus-client's default registry (served at /metrics)."""

from prometheus_client import Counter, Gauge

ADAPTER_LOADS = Counter("deliberate_adapter_loads_total", "Adapter load attempts by result",
                        ["result"])
ADAPTERS_LOADED = Gauge("deliberate_adapters_loaded", "Adapters currently registered")
ADAPTER_REQUESTS = Counter("deliberate_adapter_requests_total", "Requests served per adapter",
                           ["adapter"])
ADAPTER_EVICTIONS = Counter("deliberate_adapter_evictions_total",
                            "Adapters evicted from the engine to make room (LRU)")
