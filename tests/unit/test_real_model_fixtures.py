"""The committed fixture chat models (tests/real_models) are what they claim to be: real
architectures, byte-level BPE tokenizers with the merges that break text-level search, their
chat templates, and two EOS ids (no vLLM: transformers only)."""

from __future__ import annotations

import json

import pytest
from transformers import AutoConfig, AutoTokenizer

from tests.real_models.build import model_dir
from tests.real_models.chat_models import LLAMA3, QWEN2, SPECS, build_tokenizer
from tests.real_models.conversations import LONG_STEPS, conversations


@pytest.mark.parametrize("name", sorted(SPECS))
def test_each_fixture_is_a_real_chat_model_with_a_bpe_tokenizer(name):
    spec, path = SPECS[name], model_dir(name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    for merged in ("\n\n", " the", ".\n", ".\n\n"):
        assert len(tokenizer.encode(merged, add_special_tokens=False)) == 1, merged
    # re-encoding "step." and the delimiter apart gives other ids than the step as written
    assert tokenizer.encode("one.\n\n", add_special_tokens=False) != \
        tokenizer.encode("one.", add_special_tokens=False) + \
        tokenizer.encode("\n\n", add_special_tokens=False)
    assert max(len(tokenizer.encode(s.format(a=12, b=34), add_special_tokens=False))
               for s in LONG_STEPS) > 64
    generation = json.loads((path / "generation_config.json").read_text())
    eos = [tokenizer.convert_tokens_to_ids(t) for t in spec.eos_tokens]
    assert generation["eos_token_id"] == eos and len(set(eos)) == 2
    assert "temperature" not in generation  # vLLM would apply sampling defaults
    config = AutoConfig.from_pretrained(path)
    assert config.architectures == [spec.model_class.__name__]
    assert config.hidden_size // config.num_attention_heads in (32, 64)  # vLLM CPU attention


def test_the_templates_are_chatml_and_llama3():
    messages = [{"role": "user", "content": "Hi"}]
    qwen = AutoTokenizer.from_pretrained(model_dir(QWEN2.name))
    assert qwen.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    llama = AutoTokenizer.from_pretrained(model_dir(LLAMA3.name))
    assert llama.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n")
    # Llama-3: a BOS when encoding with special tokens, no pad token, EOS <|end_of_text|>
    assert llama.encode("Hi")[0] == llama.bos_token_id and llama.pad_token is None
    assert llama.eos_token == "<|end_of_text|>"
    # Qwen3-style thinking tags are whole tokens that stay in decoded text
    ids = qwen.encode("<think>\nx\n</think>", add_special_tokens=False)
    assert qwen.decode(ids, skip_special_tokens=True) == "<think>\nx\n</think>"


def test_the_tokenizer_builder_is_deterministic():
    dialogues = conversations(200, 0, thinking=True)
    first, second = build_tokenizer(QWEN2, dialogues), build_tokenizer(QWEN2, dialogues)
    assert first.get_vocab() == second.get_vocab()
