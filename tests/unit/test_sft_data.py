"""SFT data: the three row formats, loss masks, and weighted mixing."""

import json

import pytest

from training.components.sft_data import IGNORE_INDEX, DatasetSpec, load_mixture, tokenize_row
from training.components.tokenizer import build_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def test_prompt_completion_masks_the_prompt(tokenizer):
    row = tokenize_row({"prompt": "Compute: 1+1\n", "completion": "1+1=2", "chat": None},
                       tokenizer, 64)
    n_prompt = len("Compute: 1+1\n")
    assert row["labels"][:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert row["labels"][n_prompt:] == row["input_ids"][n_prompt:]
    assert row["input_ids"][-1] == tokenizer.eos_token_id
    assert tokenizer.decode(row["input_ids"][:-1]) == "Compute: 1+1\n1+1=2"


def test_chat_rows_learn_only_the_last_assistant_message(tokenizer):
    chat = [{"role": "user", "content": "Compute: 2*3"}, {"role": "assistant", "content": "2*3=6"}]
    row = tokenize_row({"prompt": None, "completion": None, "chat": chat}, tokenizer, 64)
    learned = [t for t in row["labels"] if t != IGNORE_INDEX]
    assert tokenizer.decode(learned[:-1]) == "2*3=6" and learned[-1] == tokenizer.eos_token_id
    with pytest.raises(ValueError, match="end with an assistant"):
        tokenize_row({"prompt": None, "completion": None, "chat": chat[:1]}, tokenizer, 64)


def test_plain_text_learns_every_token_and_truncates(tokenizer):
    row = tokenize_row({"prompt": "", "completion": "abcdef", "chat": None}, tokenizer, 4)
    assert row["labels"] == row["input_ids"] and len(row["input_ids"]) == 4


def test_dataset_spec_parsing(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("{}\n")
    assert DatasetSpec.parse(f"{path}:0.25") == DatasetSpec(path, 0.25)
    assert DatasetSpec.parse(str(path)).weight == 1.0
    with pytest.raises(ValueError, match="> 0"):
        DatasetSpec.parse(f"{path}:0")
    with pytest.raises(FileNotFoundError):
        DatasetSpec.parse(str(tmp_path / "missing.jsonl"))


def test_mixture_samples_by_weight(tmp_path):
    for name, n in (("a", 200), ("b", 200)):
        rows = [{"text": name}] * n
        (tmp_path / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    specs = [DatasetSpec(tmp_path / "a.jsonl", 3.0), DatasetSpec(tmp_path / "b.jsonl", 1.0)]
    mixed = load_mixture(specs, seed=0)
    first = [row["completion"] for row in mixed.select(range(200))]
    assert 0.65 < first.count("a") / 200 < 0.85  # 3:1 by weight while both last
