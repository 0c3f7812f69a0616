"""How a label-token reward model is read, by the server and by training alike.

A path is written out with a tag after each step (`TaggedPath`); the model's next token after a
tag is a good or a bad label. Where each tag's label is read in the path's token ids is
`find_tags`; a step's score is P(good) over {good, bad}, the sigmoid of the labels' log-odds
(`probability`). The server reads the log-odds from an engine's top-k logprobs
(`Labels.log_odds`); training reads logit(good) - logit(bad) from the model's logits at the
positions `find_tags` names, and turns it into a score with the same `probability`, so what it
trains and evaluates is what the server serves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from engine.tokens import TokenizerMethods
from verifiers.probabilities import sigmoid

Encode = Callable[[str], list[int]]


@dataclass(frozen=True)
class TaggedPath:
    """A path written out for the reward model: `text`, and after each step's tag the offset
    in `text` where that tag ends (the model's next token there is the step's label)."""

    text: str
    tag_ends: tuple[int, ...]
    add_special_tokens: bool = True  # False when `text` holds them already (a chat template)

    def query(self, steps: int) -> str:
        """The text whose next token labels step `steps` (1-based): the path up to its tag."""
        return self.text[: self.tag_ends[steps - 1]]


@dataclass(frozen=True)
class TagReading:
    """Where the labels of a path are read: the whole path's token `ids` and, for each step
    asked about, the index in `ids` of its tag's last token (the label is the token after it),
    or None where the tokenizer merges the tag with the text after it (" #\\n" as one token):
    there the label can only be read after the step's own query, tokenized alone."""

    ids: list[int]
    positions: list[int | None]


class _Tokenizer(TokenizerMethods):
    def __init__(self, tokenizer) -> None:
        self.tokenizer, self.model_name = tokenizer, getattr(tokenizer, "name_or_path", "")


def prompt_encoder(tokenizer) -> Encode:
    """How the engines tokenize a text prompt (`engine.tokens`: with the special tokens, a
    Llama's BOS, as vLLM does), over a Hugging Face tokenizer. Training encodes with it to read
    where the server reads."""
    return _Tokenizer(tokenizer).encode


def find_tags(path: TaggedPath, encode: Encode, steps: Sequence[int] | None = None
              ) -> TagReading:
    """The positions of the tags of `steps` (1-based step counts; default every step) in the
    path's ids: a tag is found where its query, tokenized alone, is a prefix of the path's
    ids, so the model reads there exactly what it reads after the query alone."""
    ids = encode(path.text)
    positions: list[int | None] = []
    for count in steps if steps is not None else range(1, len(path.tag_ends) + 1):
        query = encode(path.query(count))
        found = len(query) <= len(ids) and ids[: len(query)] == query
        positions.append(len(query) - 1 if found else None)
    return TagReading(ids, positions)


def probability(log_odds: float) -> float:
    """P(good) over {good, bad} from log P(good) - log P(bad)."""
    return sigmoid(log_odds)


@dataclass(frozen=True)
class Labels:
    good: str = "+"
    bad: str = "-"

    def log_odds(self, logprobs: Mapping[str, float]) -> float:
        """log P(good) - log P(bad) from the top-k next-token logprobs, each label matched as
        the tokenizer names it ("+", or "Ġ+" / "▁+" with a word-start marker). A label missing
        from the top-k is at most as likely as the least likely token listed, so it gets that
        logprob (an estimate that never turns "unlisted" into a hard 0 or 1); both missing:
        0 (even odds)."""
        good, bad = _label_logprob(logprobs, self.good), _label_logprob(logprobs, self.bad)
        if good is None and bad is None:
            return 0.0
        floor = min(logprobs.values())
        return (floor if good is None else good) - (floor if bad is None else bad)

    def probability(self, logprobs: Mapping[str, float]) -> float:
        """P(good) over {good, bad} from the top-k next-token logprobs (`log_odds`)."""
        return probability(self.log_odds(logprobs))

    def token_ids(self, tokenizer) -> tuple[int, int]:
        """The ids of the good and the bad label in a Hugging Face tokenizer (what training
        trains towards)."""
        good, bad = tokenizer.convert_tokens_to_ids([self.good, self.bad])
        return good, bad

    def spellings(self, tokenizer) -> tuple[list[int], list[int]]:
        """Every id of a Hugging Face tokenizer's vocabulary that `log_odds` counts as the good
        and as the bad label (the bare label, or with a word-start marker): training reads a
        label's probability summed over them, as the server does from the top-k."""
        vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
        return ([i for token, i in vocab if _spells(token, self.good)],
                [i for token, i in vocab if _spells(token, self.bad)])


_WORD_START = ("Ġ", "▁", " ")


def _spells(token: str, label: str) -> bool:
    return token == label or (token[:1] in _WORD_START and token[1:] == label)


def _label_logprob(logprobs: Mapping[str, float], label: str) -> float | None:
    found = [lp for token, lp in logprobs.items() if _spells(token, label)]
    if not found:
        return None
    top = max(found)
    return top + math.log(sum(math.exp(lp - top) for lp in found))
