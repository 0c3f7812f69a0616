"""Supervised fine-tuning data: read JSONL datasets, mix them by weight, tokenize with loss masks.

A dataset is a JSONL file, `PATH[:WEIGHT]`, or worked solutions of a demo task generated on the
fly, `task:SELECTOR:COUNT[:WEIGHT]` with SELECTOR a task and optional levels, e.g.
`task:arithmetic/6-8:20000` (the recipe's seed in the `sft` stream of `seeds.py`). Rows may be
any of three formats (the first that fits wins):
  {"prompt": ..., "completion": ...}   loss on the completion (+ eos) only
  {"messages": [{"role", "content"}]}  loss on the last assistant message, ended as the chat
                                       template ends a reply (+ eos when it has no stop id)
  {"text": ...}                        loss on every token
Rows are tokenized as the server tokenizes requests (`tokenize_row`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset, interleave_datasets, load_dataset

from training.components.problems import parse_selector, worked_problems
from training.components.seeds import problem_seed
from training.tasks import completion_prompt

IGNORE_INDEX = -100  # label id that the loss skips


@dataclass(frozen=True)
class DatasetSpec:
    path: Path
    weight: float
    task: str | None = None  # a task selector for generated demo-task data (path is unused)
    count: int = 0

    @classmethod
    def parse(cls, spec: str) -> DatasetSpec:
        """'data.jsonl', 'data.jsonl:0.3' or 'task:countdown:5000:0.3' (weight = relative
        sampling probability)."""
        if spec.startswith("task:"):
            return cls._parse_task(spec)
        path, sep, weight = spec.rpartition(":")
        if not sep or not _is_number(weight):
            path, weight = spec, "1"
        if float(weight) <= 0:
            raise ValueError(f"dataset weight must be > 0 in {spec!r}")
        if not Path(path).is_file():
            raise FileNotFoundError(f"dataset {path!r} does not exist")
        return cls(Path(path), float(weight))


    @classmethod
    def _parse_task(cls, spec: str) -> DatasetSpec:
        parts = spec.split(":")
        if len(parts) not in (3, 4) or not parts[2].isdigit():
            raise ValueError(f"task dataset must be task:SELECTOR:COUNT[:WEIGHT]; got {spec!r}")
        parse_selector(parts[1])
        weight = float(parts[3]) if len(parts) == 4 else 1.0
        if weight <= 0:
            raise ValueError(f"dataset weight must be > 0 in {spec!r}")
        return cls(Path(parts[1]), weight, task=parts[1], count=int(parts[2]))

    def __str__(self) -> str:
        if self.task:
            return f"task:{self.task}:{self.count}:{self.weight:g}"
        return f"{self.path}:{self.weight:g}"


def task_rows(selector: str, count: int, seed: int) -> list[dict]:
    """Worked solutions of fresh demo problems (the `sft` seed stream), as prompt/completion
    rows."""
    return [{"prompt": completion_prompt(problem), "completion": worked}
            for problem, worked in worked_problems(selector, problem_seed("sft", seed), count)]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_mixture(specs: list[DatasetSpec], seed: int) -> Dataset:
    """One dataset; with several, rows are sampled by weight until every dataset is used up."""
    parts = [Dataset.from_list(task_rows(spec.task, spec.count, seed)) if spec.task
             else load_dataset("json", data_files=str(spec.path), split="train") for spec in specs]
    parts = [part.map(_normalise, remove_columns=part.column_names) for part in parts]
    if len(parts) == 1:
        return parts[0].shuffle(seed=seed)
    total = sum(spec.weight for spec in specs)
    return interleave_datasets(parts, probabilities=[s.weight / total for s in specs], seed=seed,
                               stopping_strategy="all_exhausted")


def _normalise(row: dict) -> dict:
    """Every format becomes {"prompt", "completion", "chat"}; plain text has an empty prompt."""
    if row.get("prompt") is not None and row.get("completion") is not None:
        return {"prompt": row["prompt"], "completion": row["completion"], "chat": None}
    if row.get("messages"):
        return {"prompt": None, "completion": None, "chat": row["messages"]}
    if row.get("text") is not None:
        return {"prompt": "", "completion": row["text"], "chat": None}
    raise ValueError(f"row has none of prompt/completion, messages, text: {sorted(row)}")


def tokenize_row(row: dict, tokenizer, max_length: int,
                 stops: frozenset[int] = frozenset()) -> dict:
    """Token ids as the server tokenizes the request and as the model writes the reply: a
    prompt as /v1/completions encodes it (with the tokenizer's special tokens: a Llama's BOS),
    a conversation as /v1/chat/completions does (its chat template, which holds them); the
    completion up to the first id that ends a served reply (`stops`, e.g. Llama-3's <|eot_id|>
    that its template writes after a reply), or with the EOS appended when it has none."""
    if row["chat"]:
        messages = row["chat"]
        if messages[-1]["role"] != "assistant":
            raise ValueError("a messages row must end with an assistant message to learn from")
        prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False,
                                               add_generation_prompt=True)
        whole = tokenizer.apply_chat_template(messages, tokenize=False)
        # the reply as the template writes it (its end-of-turn included), where it can tell
        completion = (whole[len(prompt):] if whole.startswith(prompt)
                      else messages[-1]["content"])
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    else:
        prompt, completion = row["prompt"], row["completion"]
        prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    stops = stops or frozenset({tokenizer.eos_token_id})
    end = next((i for i, token in enumerate(completion_ids) if token in stops), None)
    completion_ids = (completion_ids[: end + 1] if end is not None
                      else completion_ids + [tokenizer.eos_token_id])
    input_ids = (prompt_ids + completion_ids)[:max_length]
    labels = [IGNORE_INDEX] * len(prompt_ids) + completion_ids
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids),
            "labels": labels[:max_length]}


def tokenize_dataset(dataset: Dataset, tokenizer, max_length: int,
                     stops: frozenset[int] = frozenset()) -> Dataset:
    return dataset.map(lambda row: tokenize_row(row, tokenizer, max_length, stops),
                       remove_columns=dataset.column_names)
