"""The PRM recipe's pieces: tag positions and targets, batching, the loss readout, AUROC; and
the reward format the serving side shares."""

import math
import random

import pytest
import torch

from training.components.batches import collate_tags as collate
from training.components.losses import tag_log_odds, tag_loss
from training.components.metrics import auroc
from training.components.tokenizer import build_tokenizer
from training.prm import encode_rows
from verifiers.reward_format import GOOD, good_probability, step_query, tagged_path

ROW = {"prompt": "Compute: 2+3*4", "completions": ["3*4=12", "2+12=15", "Answer: 15"],
       "labels": [1, 0, 0], "soft_labels": [1.0, 0.25, 0.0], "exact_labels": [1, 1, 0]}


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def encode_row(row, tokenizer, max_length, labels="hard"):
    """The demo's characters never merge a tag with its newline: one row reads every step."""
    rows = encode_rows(row, tokenizer, max_length, labels)
    assert len(rows) == 1
    return rows[0]


def test_tagged_path_and_step_query_agree():
    assert tagged_path("Q", ["a", "b"]) == "Q\na #\nb #\n"
    assert step_query("Q", ["a", "b"]) == "Q\na #\nb #"
    assert tagged_path("Q", ["a", "b"]).startswith(step_query("Q", ["a"]))


def test_encode_row_finds_one_tag_per_step(tokenizer):
    row = encode_row(ROW, tokenizer, 256, labels="hard")
    text = tokenizer.decode(row["input_ids"])
    assert [text[p] for p in row["tag_positions"]] == ["#"] * 3
    # the prefix up to each tag is exactly what the serving side asks the PRM about
    for i, p in enumerate(row["tag_positions"]):
        assert text[: p + 1] == step_query(ROW["prompt"], ROW["completions"][: i + 1])
    assert row["tag_targets"] == [1.0, 0.0, 0.0]
    assert encode_row(ROW, tokenizer, 256, labels="soft")["tag_targets"] == [1.0, 0.25, 0.0]
    assert encode_row(ROW, tokenizer, 256, labels="exact")["tag_targets"] == [1.0, 1.0, 0.0]
    # gated: rejected by the checker -> 0; valid -> between 0.5 and 1 by the soft label
    assert encode_row(ROW, tokenizer, 256, labels="gated")["tag_targets"] == [1.0, 0.625, 0.0]
    no_exact = {k: v for k, v in ROW.items() if k != "exact_labels"}
    with pytest.raises(ValueError, match="exact_labels"):
        encode_row(no_exact, tokenizer, 256, labels="gated")
    with pytest.raises(ValueError, match="3 steps but 2 labels"):
        encode_row({**ROW, "labels": [1, 0]}, tokenizer, 256, labels="hard")


def test_solvable_labels_come_from_the_prompt_not_the_row(tokenizer):
    dead_end = {"prompt": "Numbers: 3 7 25 50 Target: 353",  # 353 needs 50*7 and the 3
                "completions": ["3+7=10", "10*50=500", "500-25=475", "Answer: 475"],
                "exact_labels": [1, 1, 1, 0]}
    assert encode_row(dead_end, tokenizer, 256, labels="exact")["tag_targets"] == \
        [1.0, 1.0, 1.0, 0.0]
    assert encode_row(dead_end, tokenizer, 256, labels="solvable")["tag_targets"] == [0.0] * 4
    assert encode_row(ROW, tokenizer, 256, labels="solvable")["tag_targets"] == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="no demo task"):
        encode_row({**ROW, "prompt": "Q"}, tokenizer, 256, labels="solvable")


def test_truncation_keeps_only_the_tags_that_fit(tokenizer):
    row = encode_row(ROW, tokenizer, len("Compute: 2+3*4\n3*4=12 #") + 2, labels="hard")
    assert len(row["tag_positions"]) == 1 and row["tag_targets"] == [1.0]


def test_collate_and_log_odds_readout(tokenizer):
    rows = [encode_row(ROW, tokenizer, 256, labels="hard"),
            encode_row({**ROW, "completions": ["3*4=12"], "labels": [1]}, tokenizer, 256, "hard")]
    batch = collate(rows, tokenizer.pad_token_id)
    assert batch["input_ids"].shape[0] == 2 and batch["tag_targets"].tolist() == [1, 0, 0, 1]
    logits = torch.zeros(*batch["input_ids"].shape, 100)
    good, bad = tokenizer.convert_tokens_to_ids(["+", "-"])
    logits[batch["tag_rows"], batch["tag_cols"], good] = 2.0
    odds = tag_log_odds(logits, batch["tag_rows"], batch["tag_cols"], good, bad)
    assert odds.tolist() == [2.0] * 4
    # the loss rewards mass on the target label: lower when the logits agree with the targets
    agree = logits.clone()
    agree[batch["tag_rows"], batch["tag_cols"], bad] = 2.0 * (1 - batch["tag_targets"])
    agree[batch["tag_rows"], batch["tag_cols"], good] = 2.0 * batch["tag_targets"]
    args = (batch["tag_rows"], batch["tag_cols"], batch["tag_targets"], good, bad)
    assert tag_loss(agree, *args) < tag_loss(torch.zeros_like(logits), *args)


def test_auroc():
    assert auroc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    assert auroc([0.1, 0.9], [1, 0]) == 0.0
    assert auroc([0.5, 0.5], [1, 0]) == 0.5
    assert math.isnan(auroc([0.5], [1]))


@pytest.mark.parametrize("seed", range(5))
def test_auroc_counts_every_pair_as_the_definition_does(seed):
    rng = random.Random(seed)
    n = rng.randint(2, 60)
    scores = [rng.choice([0.1, 0.25, 0.5, 0.9]) if rng.random() < 0.5 else rng.random()
              for _ in range(n)]  # many ties
    labels = [rng.randint(0, 1) for _ in range(n)]
    labels[:2] = [0, 1]
    good = [s for s, y in zip(scores, labels) if y]
    bad = [s for s, y in zip(scores, labels) if not y]
    pairs = sum((g > b) + 0.5 * (g == b) for g in good for b in bad)
    assert auroc(scores, labels) == pytest.approx(pairs / (len(good) * len(bad)), abs=1e-12)


def test_good_probability_renormalises_over_the_two_labels():
    assert good_probability({GOOD: math.log(0.6), "-": math.log(0.2), "x": -0.1}) == \
        pytest.approx(0.75)
    # a label outside the top-k gets the smallest listed logprob, never a hard 0 or 1
    assert good_probability({GOOD: math.log(0.5), "x": math.log(0.1)}) == pytest.approx(5 / 6)
    assert good_probability({"x": -0.1}) == 0.5


def test_step_files_with_and_without_math_shepherd_labels_mix(tmp_path):
    import json

    from training.prm import load_step_rows

    full, exact_only = tmp_path / "full.jsonl", tmp_path / "exact.jsonl"
    full.write_text(json.dumps(ROW) + "\n")
    exact_only.write_text(json.dumps({"prompt": "Q", "completions": ["a"],
                                      "exact_labels": [0]}) + "\n")
    rows = load_step_rows([str(full), str(exact_only)], "exact")
    assert rows.column_names == ["prompt", "completions", "exact_labels"]
    assert rows["exact_labels"] == [[1, 1, 0], [0]]
    with pytest.raises(ValueError, match="labels"):
        load_step_rows([str(full), str(exact_only)], "hard")


def test_init_adapter_continues_from_the_saved_weights():
    from safetensors.torch import load_file

    from training.components.label_adapter import new_label_adapter
    from training.prm import build_parser

    saved = "models/demo/adapters/prm"
    args = build_parser().parse_args(["--init-adapter", saved, "--r", "16"])
    model = new_label_adapter(args).model
    weights = load_file(f"{saved}/adapter_model.safetensors")
    params = dict(model.named_parameters())
    lora = {n: p for n, p in params.items() if "lora_" in n}
    assert lora and all(p.requires_grad for p in lora.values())
    assert not any(p.requires_grad for n, p in params.items() if "lora_" not in n)
    for name, tensor in weights.items():  # saved without the adapter name in the key
        key = next(n for n in lora if n.replace(".default", "") == name)
        assert torch.equal(lora[key].detach(), tensor)
    fresh = new_label_adapter(build_parser().parse_args(["--r", "16"])).model
    b = next(p for n, p in fresh.named_parameters() if "lora_B" in n)
    assert torch.count_nonzero(b) == 0  # a fresh LoRA starts at zero: the saved one did not
