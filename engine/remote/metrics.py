"""`deliberate_upstream_*`: what the remote engine sees of each replica (label `replica`: its URL)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

IN_FLIGHT = Gauge("deliberate_upstream_in_flight", "Engine calls running on the replica",
                  ["replica"])
HEALTHY = Gauge("deliberate_upstream_healthy", "1 while the replica is in rotation, 0 when ejected",
                ["replica"])
CALLS = Counter("deliberate_upstream_calls", "Engine calls sent to the replica", ["replica"])
ERRORS = Counter("deliberate_upstream_errors",
                 "Engine calls that failed because of the replica (connect, reset, 5xx, timeout)",
                 ["replica", "kind"])
EJECTIONS = Counter("deliberate_upstream_ejections",
                    "Times the replica was taken out of rotation", ["replica"])
RETRIES = Counter("deliberate_upstream_retries",
                  "Engine calls retried on another replica after this one failed", ["replica"])
AFFINITY_HITS = Counter("deliberate_upstream_affinity_hits",
                        "Calls sent to the replica their request's earlier calls went to",
                        ["replica"])
ADAPTER_RELOADS = Counter("deliberate_upstream_adapter_reloads",
                          "Adapters loaded again on a replica that came back without them",
                          ["replica"])
