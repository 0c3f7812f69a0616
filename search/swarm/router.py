"""Which specialist answers a part.

- `LearnedRouter`: per model, a logistic regression over the question's hashed character
  n-grams predicting whether that model's greedy answer is right (trained by
  `training.swarm_router` on measured answers); the part goes to the likeliest among the
  allowed. The format is one JSON file, written by training and read here.
- `DeclaredRouter`: the fallback, from what adapters declare in their manifests (`skills`: task
  families, a description, example questions): the specialist whose declaration is most like
  the question (cosine of character 3-gram counts); the base when none is alike at all.
"""

from __future__ import annotations

import json
import math
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

BASE = "base"  # how the router's file names the base model


def ngram_features(text: str, ngrams: Sequence[int], buckets: int) -> dict[int, float]:
    """Hashed character n-gram counts of `text`, divided by the count of its n-grams (crc32:
    the same buckets in training and serving, on every machine)."""
    counts: Counter[int] = Counter()
    for n in ngrams:
        for i in range(len(text) - n + 1):
            counts[zlib.crc32(f"{n}:{text[i:i + n]}".encode()) % buckets] += 1
    total = sum(counts.values()) or 1
    return {k: v / total for k, v in counts.items()}


@dataclass(frozen=True)
class Choice:
    model: str  # as the router names it (BASE for the base model)
    why: str
    scores: dict[str, float]


@dataclass(frozen=True)
class LearnedRouter:
    ngrams: tuple[int, ...]
    buckets: int
    weights: dict[str, tuple[float, ...]]  # model -> one weight per bucket
    bias: dict[str, float]

    @classmethod
    def from_json(cls, data: Mapping) -> LearnedRouter:
        try:
            models = data["models"]
            return cls(tuple(int(n) for n in data["ngrams"]), int(data["buckets"]),
                       {m: tuple(float(w) for w in v["weights"]) for m, v in models.items()},
                       {m: float(v["bias"]) for m, v in models.items()})
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError("a swarm router needs 'ngrams', 'buckets' and 'models': {name: "
                             "{'weights': [...], 'bias': b}} "
                             f"({type(exc).__name__}: {exc})") from exc

    @classmethod
    def load(cls, path: str | Path) -> LearnedRouter:
        return cls.from_json(json.loads(Path(path).read_text()))

    @property
    def models(self) -> list[str]:
        return list(self.weights)

    def probabilities(self, question: str, models: Sequence[str]) -> dict[str, float]:
        """P(the model's greedy answer is right) for each of `models` the router knows."""
        features = ngram_features(question, self.ngrams, self.buckets)
        out = {}
        for model in models:
            if model not in self.weights:
                continue
            w = self.weights[model]
            z = self.bias[model] + sum(w[k] * v for k, v in features.items())
            out[model] = 1 / (1 + math.exp(-max(min(z, 30.0), -30.0)))
        return out

    def choose(self, question: str, models: Sequence[str]) -> Choice | None:
        """The likeliest of `models`; None when the router knows none of them."""
        probs = self.probabilities(question, models)
        if not probs:
            return None
        best = max(probs, key=lambda m: (probs[m], -models.index(m)))
        return Choice(best, f"learned router: P(right) {probs[best]:.2f}",
                      {m: round(p, 4) for m, p in probs.items()})


@dataclass(frozen=True)
class DeclaredRouter:
    declarations: dict[str, str]  # model -> what its manifest declares, as text

    def choose(self, question: str, models: Sequence[str]) -> Choice | None:
        alike = {m: _cosine(question, self.declarations[m]) for m in models
                 if m in self.declarations}
        if not alike or max(alike.values()) <= 0:
            return None
        best = max(alike, key=lambda m: (alike[m], -models.index(m)))
        return Choice(best, f"declared skills: similarity {alike[best]:.2f}",
                      {m: round(s, 4) for m, s in alike.items()})


def declaration_text(skills: Mapping) -> str:
    """A manifest's `skills` as one text: families, description, examples."""
    parts = [*skills.get("task_families", ()), skills.get("description", ""),
             *skills.get("examples", ())]
    return "\n".join(str(p) for p in parts if p)


def _grams(text: str) -> Counter[str]:
    return Counter(text[i:i + 3] for i in range(len(text) - 2))


def _cosine(a: str, b: str) -> float:
    ga, gb = _grams(a), _grams(b)
    dot = sum(v * gb[k] for k, v in ga.items())
    norm = math.sqrt(sum(v * v for v in ga.values()) * sum(v * v for v in gb.values()))
    return dot / norm if norm else 0.0
