"""Names for logprob tokens, computed once per token id.

vLLM's frontend names every entry of a position's top-k logprobs by decoding its token id alone
(`convert_ids_list_to_tokens`: one `tokenizer.decode([id])` per entry per position). Every single
pass asks for its top-k logprobs (its confidence reads them), so that decoding was most of the
server process's CPU for a greedy request (profiled: 2.8 s of 5.0 s in vLLM's output processing
for 160 demo requests at k=5). A token id's name never changes for a tokenizer, so it is decoded
once and kept (at most one string per vocabulary entry).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

from vllm.tokenizers import detokenizer_utils
from vllm.v1.engine import logprobs as vllm_logprobs

_decode_each: Callable = detokenizer_utils.convert_ids_list_to_tokens
_names: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tokenizer -> {id: name}


def token_names(tokenizer, token_ids: list[int]) -> list[str]:
    """What `convert_ids_list_to_tokens(tokenizer, token_ids)` returns, decoding only the ids
    this tokenizer has not named before."""
    try:
        names = _names.setdefault(tokenizer, {})
    except TypeError:  # a tokenizer that takes no weak reference: vLLM's own way
        return _decode_each(tokenizer, token_ids)
    missing = [token_id for token_id in dict.fromkeys(token_ids) if token_id not in names]
    if missing:
        names.update(zip(missing, _decode_each(tokenizer, missing)))
    return [names[token_id] for token_id in token_ids]


def install() -> None:
    """Name sampled logprobs through `token_names` in this process's vLLM frontend (the
    function vLLM's logprobs processor calls, replaced by one that returns the same)."""
    vllm_logprobs.convert_ids_list_to_tokens = token_names
