"""Which tuning method to use (`python -m training.recommend`): the situation (data size, memory,
compute budget, goal) through a rules table, first match wins, each rule with its reason.

Memory is the one thing computed, from the bytes each parameter needs while training (weights,
gradients and optimizer state; activations are left to the headroom):
  full fine-tuning with AdamW     16 bytes / parameter (fp32 weights, gradients, two moments; or
                                  mixed precision's 2 + 2 + 12: Rajbhandari et al. 2020, ZeRO)
  LoRA family, prompt tuning      the frozen base at its dtype (--weight-bytes) + 16 bytes per
                                  trainable parameter, taken as 0.6% of the base's (LoRA r 16 on
                                  every linear layer of a 7B Llama: 40M of 6.7B)
  QLoRA                           4-bit NF4 + double-quantized constants: 4.127 bits / parameter
                                  (Dettmers et al. 2023) + the adapter as above
A method fits when that estimate is at most HEADROOM of the memory given.

Measured figures are cited only from a committed table (training/data/peft.json, package data
found from this package, not the working directory: rows {"method": ..., measured columns...}
written by benchmarks/peft.py); without one the answer says so and rests on the rules and the
papers they name.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from adapters.safetensors_header import read_header, weight_files

GOALS = ("one_task", "many_tasks", "keep_generic")
COMPUTE = ("low", "medium", "high")  # a few hundred steps / a few thousand / epochs of a big set
SMALL_DATA = 1_000  # examples below this: a small set (overfits anything with many parameters)
LARGE_DATA = 100_000  # examples from this on: enough to move every weight usefully
PROMPT_TUNING_SCALE = 10e9  # Lester et al. 2021: prompt tuning matches fine-tuning from ~10B
HEADROOM = 0.8  # the estimate may use this share of the memory; the rest is for activations
ADAPTER_SHARE = 0.006  # trainable parameters of an adapter, as a share of the base's
PACKAGES = Path(__file__).resolve().parents[2]  # where `training` is: a checkout, or site-packages
TABLE = PACKAGES / "training" / "data" / "peft.json"
GIB = 2 ** 30


@dataclass(frozen=True)
class Situation:
    examples: int
    parameters: float
    memory_gib: float
    compute: str
    goal: str
    weight_bytes: float = 2.0  # the frozen base's bytes per parameter (bf16; 4 for fp32)


def training_gib(method: str, situation: Situation) -> float:
    """Estimated training memory of `method` (the module docstring's formulas)."""
    p = situation.parameters
    adapter = ADAPTER_SHARE * p * 16
    if method == "finetune":
        total = 16 * p
    elif method == "qlora":
        total = 4.127 / 8 * p + adapter
    else:
        total = situation.weight_bytes * p + adapter
    return total / GIB


def fits(method: str, situation: Situation) -> bool:
    return training_gib(method, situation) <= HEADROOM * situation.memory_gib


@dataclass(frozen=True)
class Rule:
    when: str  # the condition, in words
    test: Callable[[Situation], bool]
    method: str
    why: str


def _compute_at_least(situation: Situation, level: str) -> bool:
    return COMPUTE.index(situation.compute) >= COMPUTE.index(level)


RULES: tuple[Rule, ...] = (
    Rule("many tasks, under 1,000 examples each, a model of 10B+ parameters",
         lambda s: s.goal == "many_tasks" and s.examples < SMALL_DATA
         and s.parameters >= PROMPT_TUNING_SCALE and fits("prompt", s),
         "prompt",
         "a soft prompt per task is a few thousand parameters, hard to overfit on little data, and "
         "at this scale matches fine-tuning (Lester et al. 2021); the server prepends it as "
         "prompt embeddings, so every task shares one base"),
    Rule("many tasks, the base fits in memory",
         lambda s: s.goal == "many_tasks" and fits("lora", s),
         "lora",
         "one adapter per task on one shared base: the server loads adapters side by side and "
         "routes each request by name; merged methods (dora, delta_lora, full tuning) would need "
         "a whole model per task"),
    Rule("many tasks, only a 4-bit base fits",
         lambda s: s.goal == "many_tasks" and fits("qlora", s),
         "qlora",
         "the base does not fit at full precision with an adapter's training state; a 4-bit NF4 "
         "base does (Dettmers et al. 2023), and the adapters are still served side by side"),
    Rule("keep generic skills, 100,000+ examples, a large compute budget, full tuning fits",
         lambda s: s.goal == "keep_generic" and s.examples >= LARGE_DATA
         and _compute_at_least(s, "high") and fits("finetune", s),
         "finetune",
         "enough data and compute to move every weight: domain-adaptive tuning mixes generic "
         "data into the domain data by weight (--dataset DOMAIN:0.8 --dataset GENERIC:0.2), so "
         "the generic tasks keep being trained, and reports their accuracy before and after"),
    Rule("keep generic skills, the base fits in memory",
         lambda s: s.goal == "keep_generic" and fits("lora", s),
         "lora",
         "the base stays untouched: generic requests go to the base and domain ones to the "
         "adapter, and low-rank updates forget less of what the base knew than full tuning "
         "(Biderman et al. 2024, 'LoRA Learns Less and Forgets Less')"),
    Rule("keep generic skills, only a 4-bit base fits",
         lambda s: s.goal == "keep_generic" and fits("qlora", s),
         "qlora",
         "the adapter keeps the base untouched as LoRA does; training needs the 4-bit base to "
         "fit, and the adapter is served on the full-precision base"),
    Rule("one task, 100,000+ examples, a large compute budget, full tuning fits",
         lambda s: s.goal == "one_task" and s.examples >= LARGE_DATA
         and _compute_at_least(s, "high") and fits("finetune", s),
         "finetune",
         "with this much data and compute a low-rank update is the limit, not the data: full "
         "tuning learns the most (Biderman et al. 2024), and --train-layers can still freeze the "
         "layers that should not move"),
    Rule("one task, 1,000+ examples, a medium compute budget or more",
         lambda s: s.goal == "one_task" and s.examples >= SMALL_DATA
         and _compute_at_least(s, "medium") and fits("dora", s),
         "dora",
         "one task served alone can be a merged model, and DoRA (magnitude + direction) learns "
         "more than LoRA at the same rank and memory (Liu et al. 2024) for somewhat slower steps; "
         "merged, it costs nothing at inference"),
    Rule("one task, little data or compute, the base fits in memory",
         lambda s: s.goal == "one_task" and fits("lora", s),
         "lora",
         "the fewest trainable parameters that still adapt every layer: cheap steps and little "
         "room to overfit a small set"),
    Rule("one task, only a 4-bit base fits",
         lambda s: s.goal == "one_task" and fits("qlora", s),
         "qlora",
         "the base does not fit at full precision with an adapter's training state; a 4-bit NF4 "
         "base does (Dettmers et al. 2023)"),
)

# The other members of the family, and when to prefer them over the recommended one.
ALTERNATIVES: dict[str, tuple[tuple[str, str], ...]] = {
    "lora": (("rslora", "at ranks of 32 and up: alpha / sqrt(r) keeps high ranks learning "
                        "(Kalajdzievski 2023)"),
             ("adalora", "when it is unclear which modules need rank: a rank budget spent where "
                         "importance scores say, exported as a plain LoRA")),
    "qlora": (("lora", "if more memory becomes available: no quantization error in training"),),
    "dora": (("delta_lora", "also merged: W moves by the delta of B A, a higher-rank update for "
                            "LoRA's memory (Zi et al. 2023)"),
             ("lora", "to keep the base shared with other adapters")),
    "finetune": (("dora", "if the merged model must stay closer to the base: a low-rank update"),
                 ("lora", "to keep the base and serve the domain as an adapter")),
    "prompt": (("ptuning", "the same served form, virtual tokens produced by a trained encoder"),
               ("lora", "when the prompt's capacity is not enough: adapts every layer")),
}

COMMANDS = {
    "finetune": "python -m training.finetune --config training/configs/finetune_countdown.yaml",
    "prompt": "python -m training.prompt_tuning --method prompt",
}

SERVED = {"lora": "adapter", "rslora": "adapter", "adalora": "adapter (exported as LoRA)",
          "qlora": "adapter on the full-precision base", "dora": "merged model (--model)",
          "delta_lora": "merged model (--model)", "finetune": "model (--model)",
          "prompt": "prompt embeddings", "ptuning": "prompt embeddings"}


def command(method: str) -> str:
    if method in COMMANDS:
        return COMMANDS[method]
    if method == "ptuning":
        return "python -m training.prompt_tuning --method ptuning"
    return f"python -m training.lora --method {method}"


@dataclass
class Recommendation:
    method: str | None
    rule: str
    why: str
    memory_gib: dict[str, float]
    alternatives: list[tuple[str, str]] = field(default_factory=list)
    measured: list[dict] = field(default_factory=list)
    table: str | None = None  # the measured table cited, or None when none is committed

    def text(self) -> str:
        lines = []
        if self.method is None:
            lines.append(f"No method fits: {self.why}")
        else:
            lines += [f"Recommended: {self.method} (served as {SERVED[self.method]})",
                      f"  because: {self.rule}: {self.why}",
                      f"  run: {command(self.method)}"]
            lines += [f"  or {name}: {when}" for name, when in self.alternatives]
        lines.append("Estimated training memory (GiB; weights, gradients, optimizer state): "
                     + ", ".join(f"{m} {v:.3g}" for m, v in self.memory_gib.items()))
        if self.table is None:
            lines.append(f"Measured: no committed table ({cited(TABLE)}, written by "
                         "benchmarks/peft.py); the rules rest on the papers named.")
        else:
            lines.append(f"Measured ({self.table}):")
            lines += [f"  {measured_line(row)}" for row in self.measured]
        return "\n".join(lines)


def measured_line(row: dict) -> str:
    """One method's row of the table in words (its figures, rounded for reading)."""
    def pct(key: str) -> str:
        value = row.get(key)
        return "?" if value is None else f"{100 * value:.0f}%"

    parts = [f"{row['method']} ({row.get('served_as', '?')}): domain {pct('domain_accuracy')} "
             f"(base {pct('domain_accuracy_base')}), generic {pct('generic_accuracy')} "
             f"(base {pct('generic_accuracy_base')})"]
    if row.get("trainable_parameters") is not None:
        parts.append(f"{row['trainable_parameters']:,} trainable")
    if row.get("peak_rss_mb") is not None:
        parts.append(f"peak RSS {row['peak_rss_mb']:.0f} MB")
    if row.get("train_s") is not None:
        parts.append(f"{row['train_s']:.0f} s")
    if row.get("artifact_bytes") is not None:
        parts.append(f"artifact {row['artifact_bytes'] / 1e6:.2f} MB")
    if row.get("throughput_vs_base") is not None:
        parts.append(f"serving {row['throughput_vs_base']:.2f}x the base's tokens/s")
    return ", ".join(parts)


def cited(path: Path) -> str:
    """The table's path as an answer names it: the shipped one from the package's root."""
    path = path.resolve()
    return str(path.relative_to(PACKAGES)) if path.is_relative_to(PACKAGES) else str(path)


def load_table(path: Path) -> list[dict] | None:
    if not path.is_file():
        return None
    rows = json.loads(path.read_text())
    rows = rows.get("rows", rows) if isinstance(rows, dict) else rows
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "method" in r for r in rows):
        raise ValueError(f"{path}: expected a list of rows with a 'method' each")
    return rows


def recommend(situation: Situation, table: Path | None = TABLE) -> Recommendation:
    if situation.goal not in GOALS:
        raise ValueError(f"goal must be one of {GOALS}")
    if situation.compute not in COMPUTE:
        raise ValueError(f"compute must be one of {COMPUTE}")
    memory = {m: training_gib(m, situation) for m in ("finetune", "lora", "qlora")}
    rule = next((r for r in RULES if r.test(situation)), None)
    rows = load_table(table) if table is not None else None
    if rule is None:
        why = (f"even QLoRA on a 4-bit base ({memory['qlora']:.3g} GiB) needs more than "
               f"{HEADROOM:.0%} of {situation.memory_gib:g} GiB: use a smaller model or more memory")
        return Recommendation(None, "", why, memory, table=None if rows is None else cited(table))
    alternatives = list(ALTERNATIVES.get(rule.method, ()))
    named = {rule.method, *(name for name, _ in alternatives)}
    measured = [row for row in rows or [] if row["method"] in named]
    return Recommendation(rule.method, rule.when, rule.why, memory, alternatives, measured,
                          None if rows is None else cited(table))


def safetensors_parameters(model_dir: str | Path) -> int:
    """Parameters of an HF model directory, from its safetensors headers (no weights read)."""
    files = weight_files(model_dir)
    if not files:
        raise FileNotFoundError(f"no *.safetensors in {model_dir}")
    return sum(tensor.numel for path in files for tensor in read_header(path).tensors.values())
