"""Which replica serves an engine call.

1. The calls of one client request (`engine.scope`) go where its first call went, so the
   request's shared prefixes (a search's steps, rollouts and PRM/ORM scoring) hit one prefix cache.
2. A request's first call goes by rendezvous hashing on the prompt's first tokens: requests
   that share a prefix (a system prompt, a few-shot block) meet on one replica, and removing a
   replica moves only the prefixes it owned.
3. Unless that replica is busier than the least-loaded one by more than `slack` calls: then the
   next replica in its rendezvous order that is not.
`round_robin` ignores all of that (the baseline the remote benchmark measures affinity against).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from engine.protocol import EngineUnavailable
from engine.remote import metrics


@dataclass
class Replica:
    url: str
    healthy: bool = False
    in_flight: int = 0  # this process's calls on it
    reported_load: int = 0  # running + waiting requests in its own /metrics (every client's)

    @property
    def load(self) -> int:
        return max(self.in_flight, self.reported_load)


def rendezvous_order(key: bytes, replicas: Sequence[Replica]) -> list[Replica]:
    """Highest random weight first: each (key, replica) pair gets a stable pseudo-random score."""
    def score(replica: Replica) -> bytes:
        return hashlib.blake2b(key + b"\0" + replica.url.encode(), digest_size=8).digest()
    return sorted(replicas, key=score, reverse=True)


def prefix_key(prompt_token_ids: Sequence[int], prefix_tokens: int) -> bytes:
    return b",".join(str(t).encode() for t in prompt_token_ids[:prefix_tokens])


def in_rotation(replicas: Sequence[Replica], exclude: set[str]) -> list[Replica]:
    healthy = [r for r in replicas if r.healthy and r.url not in exclude]
    if not healthy:
        raise EngineUnavailable("no upstream vLLM replica is answering; retry shortly")
    return healthy


def round_robin(replicas: Sequence[Replica], exclude: set[str], turn: int) -> Replica:
    healthy = in_rotation(replicas, exclude)
    return healthy[turn % len(healthy)]


def choose(replicas: Sequence[Replica], prompt_token_ids: Sequence[int], sticky: str | None,
           exclude: set[str], prefix_tokens: int, slack: int) -> Replica:
    """The replica for the next call: `sticky` (where the request's calls went) while it is in
    rotation, else by the prompt's prefix."""
    healthy = in_rotation(replicas, exclude)
    if sticky is not None:
        same = next((r for r in healthy if r.url == sticky), None)
        if same is not None:
            metrics.AFFINITY_HITS.labels(same.url).inc()
            return same
    least = min(r.load for r in healthy)
    ranked = rendezvous_order(prefix_key(prompt_token_ids, prefix_tokens), healthy)
    return next(r for r in ranked if r.load <= least + slack)
