"""Training on real bases (the BPE chat fixtures): a pad token where the tokenizer has none, a
hub id refused before anything trains, bf16 where the hardware has it, and rows tokenized exactly
as the server tokenizes requests (transformers only, no vLLM)."""

from __future__ import annotations

import argparse
import json

import pytest
from transformers import AutoTokenizer

from tests.real_models.build import model_dir
from training import lora, reward
from training.components import base_model
from training.components.sft_data import IGNORE_INDEX, tokenize_row
from training.components.trainer import training_arguments
from training.prm import encode_rows
from verifiers.reward_format import step_query

LLAMA, QWEN = model_dir("llama3-chat"), model_dir("qwen2-chat")
CHAT = [{"role": "user", "content": "What is the capital of Peru?"},
        {"role": "assistant", "content": "The capital of Peru is Lima."}]


@pytest.fixture(scope="module")
def llama():
    return base_model.load_tokenizer(LLAMA)


def served_prompt(tokenizer, text: str) -> list[int]:
    """What the server sends the engine for a /v1/completions prompt (LocalEngine.encode)."""
    return tokenizer.encode(text, add_special_tokens=True)


def served_chat(tokenizer, messages) -> list[int]:
    """What ChatService sends for a conversation: the template, encoded without specials."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer.encode(text, add_special_tokens=False)


def learned(row: dict) -> list[int]:
    return [t for t, label in zip(row["input_ids"], row["labels"]) if label != IGNORE_INDEX]


def test_a_tokenizer_without_a_pad_token_pads_with_its_eos(llama):
    assert AutoTokenizer.from_pretrained(LLAMA).pad_token is None  # Llama-3, as shipped
    assert llama.pad_token == llama.eos_token == "<|end_of_text|>"
    qwen = base_model.load_tokenizer(QWEN)
    assert qwen.pad_token == "<|endoftext|>" != qwen.eos_token  # its own pad is kept


def test_a_reply_ends_where_the_server_stops(llama):
    eot, eos = llama.convert_tokens_to_ids(["<|eot_id|>", "<|end_of_text|>"])
    assert base_model.stop_ids(LLAMA, llama) == {eot, eos}


def test_a_prompt_row_is_tokenized_as_v1_completions_tokenizes_its_prompt(llama):
    stops = base_model.stop_ids(LLAMA, llama)
    row = tokenize_row({"prompt": "Q: 2+3?\n", "completion": "5", "chat": None}, llama, 64, stops)
    prompt = served_prompt(llama, "Q: 2+3?\n")
    assert prompt[0] == llama.bos_token_id  # training used to leave the BOS out
    assert row["input_ids"][: len(prompt)] == prompt
    assert learned(row) == llama.encode("5", add_special_tokens=False) + [llama.eos_token_id]


@pytest.mark.parametrize("path, end", [(LLAMA, "<|eot_id|>"), (QWEN, "<|im_end|>")])
def test_a_chat_row_is_the_served_conversation_and_the_reply_as_the_template_ends_it(path, end):
    tokenizer = base_model.load_tokenizer(path)
    row = tokenize_row({"prompt": None, "completion": None, "chat": CHAT}, tokenizer, 128,
                       base_model.stop_ids(path, tokenizer))
    prompt = served_chat(tokenizer, CHAT[:1])
    assert row["input_ids"][: len(prompt)] == prompt
    reply = learned(row)
    # the template's end of turn, which the server stops on; nothing after it, no second EOS
    assert reply[-1] == tokenizer.convert_tokens_to_ids(end)
    assert tokenizer.decode(reply[:-1]) == CHAT[1]["content"]


def test_the_prm_reads_each_tag_where_the_server_reads_it(llama):
    row = {"prompt": "What is 3+4+5?", "completions": ["3+4=7", "7+5=12", "Answer: 12"],
           "labels": [1, 1, 0]}
    [encoded] = encode_rows(row, llama, 256)
    assert encoded["input_ids"][0] == llama.bos_token_id
    # the verifier's query for step i, tokenized as the engine tokenizes a text prompt, ends
    # at the position whose logits the loss reads
    queries = [served_prompt(llama, step_query(row["prompt"], row["completions"][: i + 1]))
               for i in range(3)]
    assert encoded["tag_positions"] == [len(q) - 1 for q in queries]
    assert encoded["tag_targets"] == [1.0, 1.0, 0.0]


def test_the_orm_pairs_are_tokenized_as_the_server_tokenizes_the_orm_query(llama):
    pair = reward.encode_pair({"prompt": "What is 3+4?", "chosen": "3+4=7\nAnswer: 7",
                               "rejected": "3+4=8\nAnswer: 8"}, llama, 256)
    assert pair["chosen_ids"] == served_prompt(llama, step_query("What is 3+4?",
                                                                 ["3+4=7\nAnswer: 7"]))


def test_a_hub_id_is_refused_before_anything_loads_or_trains(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"messages": CHAT}) + "\n")
    monkeypatch.setattr(lora, "train", lambda args: pytest.fail("training started"))
    with pytest.raises(SystemExit) as exit_info:
        lora.main(["--model", "meta-llama/Llama-3.2-1B-Instruct", "--dataset", str(data),
                   "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "'meta-llama/Llama-3.2-1B-Instruct' is not a local model directory" in err
    assert "huggingface-cli download" in err


def test_bf16_where_the_hardware_has_it_unless_a_flag_says(monkeypatch):
    args = lora.build_parser().parse_args(["--dataset", "x", "--out", "y"])
    monkeypatch.setattr(base_model, "bf16_available", lambda: False)
    assert args.bf16 is None and not training_arguments(args).bf16
    monkeypatch.setattr(base_model, "bf16_available", lambda: True)
    assert training_arguments(args).bf16
    no = lora.build_parser().parse_args(["--dataset", "x", "--out", "y", "--no-bf16"])
    assert not training_arguments(no).bf16
    yes = argparse.Namespace(**{**vars(args), "bf16": True})
    monkeypatch.setattr(base_model, "bf16_available", lambda: False)
    assert training_arguments(yes).bf16  # asked for on a CPU: autocast there
