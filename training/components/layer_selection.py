"""Which parameters learn in full-parameter tuning (`training.finetune --train-layers /
--train-modules`); every other parameter is frozen.

A module name matches a parameter whose dotted name has it as a run of parts (`mlp`, `q_proj`,
`self_attn.o_proj`, `input_layernorm`, `embed_tokens`, `norm` = the final norm only, `lm_head`);
"inner" names are those matching parameters inside the decoder layers (`model.layers.i.` in
Llama, `transformer.h.i.` in GPT-2). A parameter
- inside layer i learns when i is among --train-layers (any layer without the flag) and it
  matches an inner name of --train-modules, if there is one; without either flag, always;
  without --train-layers but with only outer names (lm_head), never;
- outside the layers (embed_tokens, the final norm, lm_head) learns when --train-modules names
  it, or when neither flag is given (full fine-tuning).
So `--train-layers 2-3 --train-modules lm_head` trains layers 2 and 3 whole and the head;
`--train-layers 2-3 --train-modules mlp` their MLPs only; `--train-modules lm_head` the head only.
A weight tied to another (lm_head to embed_tokens) learns when either of its names does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

_LAYER = re.compile(r"\.(?:layers|h|blocks)\.(\d+)\.")


def parse_layers(specs: list[str] | None) -> set[int] | None:
    """'3', '0-2' (inclusive) -> layer indices; None (no flag) -> None (every layer)."""
    if specs is None:
        return None
    layers: set[int] = set()
    for spec in specs:
        low, sep, high = str(spec).partition("-")
        if not low.isdigit() or (sep and not high.isdigit()):
            raise ValueError(f"--train-layers takes layer indices or LO-HI ranges; got {spec!r}")
        first, last = int(low), int(high) if sep else int(low)
        if last < first:
            raise ValueError(f"--train-layers range {spec!r} runs backwards: write {last}-{first}")
        layers.update(range(first, last + 1))
    return layers


def layer_count(model_dir: str | Path) -> int | None:
    """Decoder layers of an HF model directory, from its config.json (None if unreadable)."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        return None
    config = json.loads(path.read_text())
    config = config.get("text_config", config)
    for key in ("num_hidden_layers", "n_layer", "num_layers"):
        if isinstance(config.get(key), int):
            return config[key]
    return None


def layer_problems(layers: set[int] | None, count: int | None) -> list[str]:
    if layers is None or count is None:
        return []
    outside = sorted(i for i in layers if i >= count)
    if outside:
        return [f"--train-layers {outside}: the model has layers 0..{count - 1}"]
    return []


def _has_run(name: str, module: str) -> bool:
    parts, wanted = name.split("."), module.split(".")
    return any(parts[i:i + len(wanted)] == wanted for i in range(len(parts) - len(wanted) + 1))


def layer_index(name: str) -> int | None:
    """The decoder layer a parameter belongs to (None outside the layers)."""
    match = _LAYER.search("." + name)
    return None if match is None else int(match.group(1))


def learns(name: str, layers: set[int] | None, modules: list[str] | None,
           inner: list[str]) -> bool:
    """Whether the parameter `name` learns under the rule in this module's docstring (`inner`:
    the names of `modules` that match parameters inside the layers)."""
    index = layer_index(name)
    if index is None:
        return (layers is None and modules is None) or any(_has_run(name, m)
                                                           for m in modules or [])
    matched = any(_has_run(name, m) for m in inner)
    if layers is None:
        return modules is None or matched
    return index in layers and (matched or not inner)


def select_trainable(model, layers: set[int] | None, modules: list[str] | None) -> list[str]:
    """Sets requires_grad on every parameter of `model` by the rule; returns the names of the
    parameters that learn. ValueError when a module name matches nothing, or nothing learns."""
    names = [name for name, _ in model.named_parameters(remove_duplicate=False)]
    unknown = [m for m in modules or [] if not any(_has_run(name, m) for name in names)]
    if unknown:
        raise ValueError(f"--train-modules {unknown} match no parameter of the model; names look "
                         f"like {names[:3]}")
    inner = [m for m in modules or []
             if any(_has_run(name, m) for name in names if layer_index(name) is not None)]
    wanted: dict[int, bool] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        wanted[id(param)] = wanted.get(id(param), False) or learns(name, layers, modules, inner)
    trainable = []
    for name, param in model.named_parameters():
        param.requires_grad_(wanted[id(param)])
        if wanted[id(param)]:
            trainable.append(name)
    if not trainable:
        raise ValueError(f"no parameter learns with --train-layers {sorted(layers or [])} and "
                         f"--train-modules {modules}: name modules inside those layers")
    return trainable
