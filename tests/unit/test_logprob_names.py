"""Logprob tokens are named once per token id (engine/logprob_names.py): the same names as
vLLM's own per-id decoding, on the demo's character tokenizer and on real BPE tokenizers, and a
second naming of an id decodes nothing."""

from __future__ import annotations

import pytest
from vllm.tokenizers import get_tokenizer
from vllm.tokenizers.detokenizer_utils import convert_ids_list_to_tokens
from vllm.v1.engine import logprobs as vllm_logprobs

from engine import logprob_names

MODELS = ["models/demo/base", "tests/real_models/models/llama3-chat",
          "tests/real_models/models/qwen2-chat"]


@pytest.mark.parametrize("model", MODELS)
def test_names_equal_vllms_own_for_every_id(model):
    tokenizer = get_tokenizer(model)
    ids = list(range(len(tokenizer)))
    assert logprob_names.token_names(tokenizer, ids) == convert_ids_list_to_tokens(tokenizer, ids)
    # and again, answered from what was kept, repeats and order included
    again = ids[::-7] + ids[:5] + ids[:5]
    assert logprob_names.token_names(tokenizer, again) == convert_ids_list_to_tokens(tokenizer,
                                                                                     again)


def test_an_id_is_decoded_once(monkeypatch):
    tokenizer = get_tokenizer("models/demo/base")
    decoded = []

    def decode_each(tok, ids):
        decoded.extend(ids)
        return convert_ids_list_to_tokens(tok, ids)

    monkeypatch.setattr(logprob_names, "_decode_each", decode_each)
    monkeypatch.setattr(logprob_names, "_names", type(logprob_names._names)())
    logprob_names.token_names(tokenizer, [5, 6, 5, 7])
    logprob_names.token_names(tokenizer, [7, 6, 8])
    assert decoded == [5, 6, 7, 8]


def test_install_replaces_what_vllms_logprobs_processor_calls(monkeypatch):
    monkeypatch.setattr(vllm_logprobs, "convert_ids_list_to_tokens",
                        vllm_logprobs.convert_ids_list_to_tokens)
    logprob_names.install()
    assert vllm_logprobs.convert_ids_list_to_tokens is logprob_names.token_names
