"""Prometheus series of routed and searched requests."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS_BY_STRATEGY = Counter("deliberate_reasoning_requests",
                               "Chat and completion requests by the strategy that served them",
                               ["strategy"])
DIFFICULTY = Histogram("deliberate_difficulty", "Estimated difficulty of routed requests",
                       buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0))
NODES = Histogram("deliberate_search_nodes", "Steps generated and scored per search",
                  ["strategy"], buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000))
SEARCH_SECONDS = Histogram("deliberate_search_seconds", "Wall time of searches", ["strategy"],
                           buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
VERIFIER_DISAGREEMENTS = Counter(
    "deliberate_verifier_disagreements",
    "Searched answers on which the learned verifiers and the exact ones disagreed strongly "
    "(learned_higher: a reward model likes what an exact check rejects)", ["direction"])
TOKENS_BY_KIND = Counter("deliberate_reasoning_tokens",
                         "Generated tokens of routed requests: in the answer or spent reasoning",
                         ["kind"])
CONFIDENCE = Histogram("deliberate_confidence",
                       "Confidence of each answered request (reasoning.confidence.value)",
                       ["strategy"], buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9,
                                              0.95, 1.0))
ABSTENTIONS = Counter("deliberate_abstentions",
                      "Requests whose answer was withheld below their abstain_below",
                      ["strategy"])
