"""Tiny reward models of the ecosystem's architectures, made from the fixture chat models (as
Qwen2.5-Math-PRM is made from a Qwen2.5-Math chat model, Skywork-Reward from a Llama-3.1 one):

- `qwen2-prm`: `Qwen2ForProcessRewardModel` (Qwen2.5-Math-PRM's architecture: the Qwen2 body
  and a two-class token head, `score.0` / ReLU / `score.2`) on the qwen2-chat body and
  tokenizer, with `<extra_0>` added as a special token; the head untrained (the tests are of
  the plumbing);
- `llama3-orm`: `LlamaForSequenceClassification` with one label (Skywork-Reward's shape) on the
  llama3-chat body, tokenizer and template; the head untrained;
- `llama3-shepherd`: a Math-Shepherd-style token PRM, the llama3-chat model trained 200
  steps to write "+" or "-" after the step tag " ки" (by the parity of the step's result), so
  both labels lead the next-token distribution there.

`reference_*` compute the same scores with transformers, from the same text, for the tests to
compare the served scores against.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import (AutoModelForCausalLM, AutoModelForSequenceClassification,
                          AutoTokenizer, LlamaForCausalLM, LlamaForSequenceClassification,
                          Qwen2Model)

SEPARATOR = "<extra_0>"
STEP_TAG = " ки"


def build_pooling_prm(chat_model: Path, out: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(chat_model)
    tokenizer.add_special_tokens({"additional_special_tokens": [SEPARATOR]})
    body = Qwen2Model.from_pretrained(chat_model, dtype=torch.float32)
    body.resize_token_embeddings(len(tokenizer))  # the separator's row
    hidden = body.config.hidden_size
    weights = {f"model.{k}": v.contiguous() for k, v in body.state_dict().items()}
    weights |= {"score.0.weight": torch.randn(hidden, hidden) / hidden ** 0.5,
                "score.0.bias": torch.zeros(hidden),
                "score.2.weight": torch.randn(2, hidden) / hidden ** 0.5,
                "score.2.bias": torch.zeros(2)}
    out.mkdir(parents=True, exist_ok=True)
    save_file(weights, out / "model.safetensors", metadata={"format": "pt"})
    config = body.config
    config.architectures, config.num_labels = ["Qwen2ForProcessRewardModel"], 2
    config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_classifier_orm(chat_model: Path, out: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = LlamaForSequenceClassification.from_pretrained(chat_model, num_labels=1,
                                                           dtype=torch.float32)
    model.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(chat_model).save_pretrained(out)
    return out


def build_token_prm(chat_model: Path, out: Path, seed: int = 0, steps: int = 200) -> Path:
    """Trained on Math-Shepherd text, `{question} {step} ки\n{step} ки`, to put "+" after a
    tag when the step's result is even and "-" when it is odd: a rule it learns in seconds,
    where right and wrong sums would take far longer; the tests need both labels on top after a
    tag and scores that differ from step to step."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # the same weights on every machine's run
    tokenizer = AutoTokenizer.from_pretrained(chat_model)
    tokenizer.add_tokens([STEP_TAG])  # one token, as "ки" is in Math-Shepherd's vocabulary
    model = LlamaForCausalLM.from_pretrained(chat_model, dtype=torch.float32)
    model.resize_token_embeddings(len(tokenizer))
    rng = random.Random(seed)
    good, bad = (tokenizer.convert_tokens_to_ids(t) for t in ("+", "-"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(steps):
        batch = [_shepherd_example(tokenizer, rng, good, bad) for _ in range(16)]
        width = max(len(ids) for ids, _ in batch)
        ids = torch.full((len(batch), width), tokenizer.eos_token_id)
        labels = torch.full((len(batch), width), -100)
        for row, (tokens, targets) in enumerate(batch):
            ids[row, : len(tokens)] = torch.tensor(tokens)
            labels[row, : len(targets)] = torch.tensor(targets)
        model(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def _shepherd_example(tokenizer, rng: random.Random, good: int, bad: int
                      ) -> tuple[list[int], list[int]]:
    """(ids, labels) of one Math-Shepherd row: the label token after every tag, -100 elsewhere
    (labels[i] is the token at i: transformers shifts them)."""
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    ids = tokenizer(f"What is {a}+{b}?", add_special_tokens=True)["input_ids"]
    labels = [-100] * len(ids)
    for _ in range(rng.randint(1, 3)):
        c = a + b + rng.choice([0, 0, 1, -1])
        step = tokenizer(f" {a}+{b}={c}{STEP_TAG}", add_special_tokens=False)["input_ids"]
        label = good if c % 2 == 0 else bad
        ids += step + [label] + tokenizer("\n", add_special_tokens=False)["input_ids"]
        labels += [-100] * len(step) + [label, -100]
        a, b = c, rng.randint(1, 9)
    return ids, labels


BUILDERS = {"qwen2-prm": ("qwen2-chat", build_pooling_prm),
            "llama3-orm": ("llama3-chat", build_classifier_orm),
            "llama3-shepherd": ("llama3-chat", build_token_prm)}


# --- references: the same scores computed with transformers ---------------------------------

def reference_pooling_prm(model_dir: Path, text: str) -> list[float]:
    """P(class 1) at each separator of `text` (the rendered conversation)."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    body = Qwen2Model.from_pretrained(model_dir, dtype=torch.float32).eval()
    head = load_file(model_dir / "model.safetensors")
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        hidden = body(ids).last_hidden_state[0]  # [S, H]
        inner = torch.relu(hidden @ head["score.0.weight"].T + head["score.0.bias"])
        logits = inner @ head["score.2.weight"].T + head["score.2.bias"]  # [S, 2]
    at = ids[0] == tokenizer.convert_tokens_to_ids(SEPARATOR)
    return logits.softmax(-1)[at, 1].tolist()


def reference_classifier_orm(model_dir: Path, text: str) -> float:
    """The one-label reward of `text` (the rendered conversation), through a sigmoid."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return torch.sigmoid(model(ids).logits[0, 0]).item()


def reference_token_prm(model_dir: Path, queries: list[str]) -> list[float]:
    """P("+") over {"+", "-"} as the next token after each query (text up to a tag)."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    good, bad = (tokenizer.convert_tokens_to_ids(t) for t in ("+", "-"))
    scores = []
    with torch.no_grad():
        for query in queries:
            ids = tokenizer(query, add_special_tokens=True, return_tensors="pt")["input_ids"]
            logits = model(ids).logits[0, -1, [good, bad]]
            scores.append(logits.softmax(-1)[0].item())
    return scores
