"""Logits as a score in [0, 1]: a classification head's (the ecosystem's reward models) and a
label pair's log-odds (verifiers/label_reading.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def softmax_at(logits: Sequence[float], label: int) -> float:
    if not 0 <= label < len(logits):
        raise ValueError(f"positive_label {label} is not one of the head's {len(logits)} "
                         "classes")
    top = max(logits)
    return math.exp(logits[label] - top) / sum(math.exp(x - top) for x in logits)


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)
