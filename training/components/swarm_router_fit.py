"""Fitting the swarm's learned router (`search.swarm.router.LearnedRouter`): per model, an
L2-regularised logistic regression over hashed character n-grams of the question, predicting
whether that model's greedy answer is right. Plain numpy, full-batch Adam: a few thousand
questions fit in seconds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from search.swarm.router import ngram_features


def features(questions: Sequence[str], ngrams: Sequence[int], buckets: int) -> np.ndarray:
    x = np.zeros((len(questions), buckets), dtype=np.float64)  # [N, B]
    for i, q in enumerate(questions):
        for k, v in ngram_features(q, ngrams, buckets).items():
            x[i, k] = v
    return x


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-4, steps: int = 600,
                 lr: float = 0.05) -> tuple[np.ndarray, float]:
    """Weights [B] and bias of P(y=1 | x), by full-batch Adam on the mean log loss."""
    w, b = np.zeros(x.shape[1]), float(np.log((y.mean() + 1e-3) / (1 - y.mean() + 1e-3)))
    m, v = np.zeros(x.shape[1] + 1), np.zeros(x.shape[1] + 1)
    for t in range(1, steps + 1):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        grad = np.concatenate([x.T @ (p - y) / len(y) + l2 * w, [np.mean(p - y)]])
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad ** 2
        step = lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        w -= step[:-1]
        b -= float(step[-1])
    return w, b


def fit_router(questions: Sequence[str], solved: Mapping[str, Sequence[bool]],
               ngrams: Sequence[int], buckets: int, **fit) -> dict:
    """The router file's content: {ngrams, buckets, models: {name: {weights, bias}}}."""
    x = features(questions, ngrams, buckets)
    models = {}
    for model, labels in solved.items():
        w, b = fit_logistic(x, np.asarray(labels, dtype=np.float64), **fit)
        models[model] = {"weights": [round(float(a), 5) for a in w], "bias": round(b, 5)}
    return {"ngrams": list(ngrams), "buckets": buckets, "models": models}


def routing_accuracy(chosen: Sequence[str], solved: Mapping[str, Sequence[bool]]) -> float:
    """The share of questions whose chosen model answers them right."""
    return float(np.mean([solved[m][i] for i, m in enumerate(chosen)])) if chosen else 0.0
