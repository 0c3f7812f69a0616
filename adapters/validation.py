"""Everything checked before an adapter directory reaches the engine.

Two kinds are served: LoRA (peft_type LORA, loaded by the engine from its directory) and prompt
adapters (PROMPT_TUNING, P_TUNING: their `prompt_embeddings` [n_virtual, hidden] are prepended
to the prompt). DoRA and prefix tuning / P-tuning v2 are refused with what to do instead.
The checks read only JSON and safetensors headers: nothing is unpickled, and the one tensor
ever loaded is a prompt adapter's embeddings (`load_prompt_embeddings`), once validated.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from safetensors import safe_open

from adapters.errors import AdapterError, AdapterNotFound
from adapters.manifest import (FINGERPRINT_KEY, LEGACY_SHA256_KEY, model_fingerprint,
                               read_manifest, weights_sha256)
from adapters.safetensors_header import read_header, weight_files

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PICKLE_WEIGHTS = ("adapter_model.bin", "adapter_model.pt", "adapter_model.pth")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# The embeddings and lm_head cannot be adapted: vLLM's CPU LoRA logits path is bypassed (see
# engine/cpu_fixes.py) and added tokens would change the vocabulary.
FORBIDDEN_TARGETS = ("lm_head", "embed_tokens", "wte", "embed_out")


PROMPT_TYPES = ("PROMPT_TUNING", "P_TUNING")
PROMPT_KEY = "prompt_embeddings"
DORA_REFUSAL = ("DoRA adapters cannot be served: vLLM serves plain LoRA only. Merge it into the "
                "base (`python -m training.lora --method dora` writes the merged model; with peft, "
                "merge_and_unload() and save_pretrained()) and serve that with --model DIR.")
# A whole model (a merged export: `training.lora --method dora|delta_lora`, `training.finetune`)
MODEL_DIR_REFUSAL = ("{path} is a model directory (config.json), not an adapter "
                     "(adapter_config.json): serve it as the model, `python -m server --model "
                     "{path}`.")
PREFIX_REFUSAL = ("peft_type PREFIX_TUNING (prefix tuning, P-tuning v2) cannot be served: it adds "
                  "trained keys and values to every layer's attention, which vLLM cannot serve. "
                  "Evaluate it offline (`python -m training.prompt_tuning` reports its accuracy), "
                  "or train prompt tuning or P-tuning (served as prompt embeddings) or LoRA.")


@dataclass(frozen=True)
class AdapterLimits:
    allowed_roots: tuple[Path, ...]
    max_rank: int
    max_bytes: int
    max_virtual_tokens: int = 128


@dataclass(frozen=True)
class BaseModelInfo:
    """What an adapter must match: the served base's weight shapes and fingerprint.

    Empty shapes (a base that is not a local directory) skip the shape check, and without a
    `model_dir` there are no fingerprints. Each is computed when a manifest first asks for it.
    """

    weight_shapes: dict[str, tuple[int, ...]]  # "model.layers.0.self_attn.q_proj.weight" -> [out, in]
    model_dir: Path | None = None

    @functools.cached_property
    def fingerprint(self) -> str | None:
        return model_fingerprint(self.model_dir) if self.model_dir else None

    @functools.cached_property
    def weights_sha256(self) -> str | None:
        """What older manifests carry: it reads every weight byte."""
        return weights_sha256(self.model_dir) if self.model_dir else None


@dataclass(frozen=True)
class ValidatedAdapter:
    name: str
    path: Path  # resolved, inside an allowed root
    rank: int
    target_modules: tuple[str, ...]
    kind: str = "lora"  # "lora" | "prompt"
    num_virtual_tokens: int = 0


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise AdapterError(
            "lora_name must be 1-64 characters of letters, digits, '.', '_' or '-', starting "
            f"with a letter or digit; got {name!r}.", param="lora_name")
    return name


def resolve_inside_roots(raw_path: str, roots: tuple[Path, ...]) -> Path:
    if not raw_path or not isinstance(raw_path, str):
        raise AdapterError("lora_path is required: the adapter directory on the server.")
    # resolve() follows every symlink and removes '..', so the containment check sees the real path.
    path = Path(raw_path).expanduser().resolve()
    resolved_roots = [root.resolve() for root in roots]
    if not any(path == root or path.is_relative_to(root) for root in resolved_roots):
        allowed = ", ".join(str(root) for root in resolved_roots) or "(none configured)"
        raise AdapterError(
            f"lora_path {raw_path!r} resolves to {path}, outside the allowed adapter roots "
            f"({allowed}). Place the adapter under one of them or add its directory with "
            "--adapter-root.")
    if not path.is_dir():
        raise AdapterNotFound(f"lora_path {raw_path!r} is not an existing directory.")
    return path


def validate_adapter(name: str, raw_path: str, base: BaseModelInfo,
                     limits: AdapterLimits) -> ValidatedAdapter:
    validate_name(name)
    path = resolve_inside_roots(raw_path, limits.allowed_roots)
    config = _read_config(path)
    if config.get("peft_type") in PROMPT_TYPES:
        return _validate_prompt_adapter(name, path, config, base, limits)
    _check_config(config, limits)
    weights = _weights_file(path, limits)
    rank = _check_weights(weights, base, limits)
    _check_manifest(path, base)
    targets = config.get("target_modules") or ()
    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    return ValidatedAdapter(name=name, path=path, rank=rank, target_modules=targets)


def _read_config(path: Path) -> dict:
    config_path = path / ADAPTER_CONFIG
    if not config_path.is_file():
        if (path / "config.json").is_file():
            raise AdapterError(MODEL_DIR_REFUSAL.format(path=path))
        raise AdapterError(f"{path} has no {ADAPTER_CONFIG}: is it a PEFT adapter directory?")
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdapterError(f"{config_path} is not valid JSON ({exc}).") from exc
    if not isinstance(config, dict):
        raise AdapterError(f"{config_path} must hold a JSON object.")
    return config


def _check_config(config: dict, limits: AdapterLimits) -> None:
    if config.get("peft_type") == "PREFIX_TUNING":
        raise AdapterError(PREFIX_REFUSAL)
    if config.get("peft_type") != "LORA":
        raise AdapterError(f"peft_type is {config.get('peft_type')!r}; LORA, PROMPT_TUNING and "
                           "P_TUNING adapters are served. Re-train with one of those.")
    if config.get("use_dora"):
        raise AdapterError(DORA_REFUSAL)
    problems = []
    if config.get("bias", "none") != "none" or config.get("lora_bias"):
        problems.append("bias terms (set bias='none', lora_bias=False)")
    if config.get("modules_to_save"):
        problems.append(f"modules_to_save {config['modules_to_save']} (train without them)")
    targets = config.get("target_modules") or []
    targets = [targets] if isinstance(targets, str) else targets
    forbidden = [t for t in targets if any(f in t for f in FORBIDDEN_TARGETS)]
    if forbidden:
        problems.append(f"target modules {forbidden} (embeddings/lm_head; target the linear "
                        "layers only and add no tokens)")
    if problems:
        raise AdapterError("This adapter cannot be served: it uses " + "; ".join(problems) + ".")
    ranks = [config.get("r", 0), *(config.get("rank_pattern") or {}).values()]
    if max(ranks) > limits.max_rank:
        raise AdapterError(f"adapter rank {max(ranks)} exceeds the server's max LoRA rank "
                           f"{limits.max_rank}; re-train with r <= {limits.max_rank} or start "
                           "the server with a larger --max-lora-rank.")


def _weights_file(path: Path, limits: AdapterLimits) -> Path:
    weights = path / ADAPTER_WEIGHTS
    if not weights.is_file():
        pickles = [p for p in PICKLE_WEIGHTS if (path / p).exists()]
        if pickles:
            raise AdapterError(f"{path} has only pickle weights ({', '.join(pickles)}), which are "
                               "never loaded (unpickling runs code). Convert them to "
                               f"{ADAPTER_WEIGHTS} with safetensors.")
        raise AdapterError(f"{path} has no {ADAPTER_WEIGHTS}.")
    size = weights.stat().st_size
    if size > limits.max_bytes:
        raise AdapterError(f"{weights.name} is {size} bytes, above the limit of "
                           f"{limits.max_bytes} (--max-adapter-bytes).")
    return weights


def _check_weights(weights: Path, base: BaseModelInfo, limits: AdapterLimits) -> int:
    try:
        with safe_open(str(weights), framework="numpy") as fh:
            shapes = {key: tuple(fh.get_slice(key).get_shape()) for key in fh.keys()}
    except Exception as exc:  # safetensors raises several types for a damaged header
        raise AdapterError(f"{weights} is not a readable safetensors file ({exc}).") from exc
    if not shapes:
        raise AdapterError(f"{weights} holds no tensors.")
    rank = 0
    for key, shape in shapes.items():
        base_key, kind = _base_key(key)
        if kind is None:
            raise AdapterError(f"{weights.name} holds {key!r}, which is not a LoRA A/B weight; "
                               "only LoRA matrices are served.")
        if not base.weight_shapes:
            rank = max(rank, min(shape))
            continue
        base_shape = base.weight_shapes.get(base_key)
        if base_shape is None or len(shape) != 2 or len(base_shape) != 2:
            raise AdapterError(f"{key!r} adapts {base_key!r}, which the served base model does "
                               "not have: this adapter was trained for another base model.")
        out_dim, in_dim = base_shape
        lora_rank = shape[0] if kind == "A" else shape[1]
        fits = shape[1] == in_dim if kind == "A" else shape[0] == out_dim
        if not fits:
            raise AdapterError(f"{key!r} has shape {list(shape)}, which does not fit the base "
                               f"weight {list(base_shape)}: this adapter was trained for another "
                               "base model.")
        rank = max(rank, lora_rank)
    if rank > limits.max_rank:
        raise AdapterError(f"adapter weights have rank {rank}, above the server's max LoRA rank "
                           f"{limits.max_rank}.")
    _check_values(weights)
    return rank


FLOAT_DTYPES = ("F32", "F16", "BF16")


def _check_values(weights: Path) -> None:
    """Every weight a float, and finite: a NaN or Inf in one adapter would make its rows' logits
    NaN inside a batch the engine shares with every other request. Reads the tensors (an
    adapter is a few MB; --max-adapter-bytes bounds it)."""
    import torch  # only here: the checks above need no tensor library

    try:
        with safe_open(str(weights), framework="pt") as fh:
            for key in fh.keys():
                dtype = fh.get_slice(key).get_dtype()
                if dtype not in FLOAT_DTYPES:
                    raise AdapterError(f"{key!r} is {dtype}; adapter weights are float32, "
                                       "float16 or bfloat16.")
                if not torch.isfinite(fh.get_tensor(key)).all():
                    raise AdapterError(f"{key!r} holds NaN or infinite values: the adapter is "
                                       "damaged; retrain or re-export it.")
    except AdapterError:
        raise
    except Exception as exc:  # data shorter than its header says, and such
        raise AdapterError(f"{weights} is not a readable safetensors file ({exc}).") from exc


def _base_key(adapter_key: str) -> tuple[str, str | None]:
    """'base_model.model.model.layers.0.mlp.up_proj.lora_A.weight' -> ('model.layers.0.mlp.up_proj.weight', 'A')."""
    key = adapter_key.removeprefix("base_model.model.")
    for kind in ("A", "B"):
        for suffix in (f".lora_{kind}.weight", f".lora_{kind}.default.weight"):
            if key.endswith(suffix):
                return key[: -len(suffix)] + ".weight", kind
    return key, None


def _validate_prompt_adapter(name: str, path: Path, config: dict, base: BaseModelInfo,
                             limits: AdapterLimits) -> ValidatedAdapter:
    """Prompt tuning / P-tuning: exactly one tensor, `prompt_embeddings` [n, hidden], float, n
    within the limit, hidden the base's."""
    if config.get("num_transformer_submodules", 1) != 1:
        raise AdapterError("this prompt adapter is for an encoder-decoder model; only causal "
                           "language models' prompt adapters are served.")
    weights = _weights_file(path, limits)
    try:
        with safe_open(str(weights), framework="numpy") as fh:
            keys = list(fh.keys())
            header = {key: fh.get_slice(key) for key in keys}
            shapes = {key: tuple(s.get_shape()) for key, s in header.items()}
            dtypes = {key: s.get_dtype() for key, s in header.items()}
    except Exception as exc:  # safetensors raises several types for a damaged header
        raise AdapterError(f"{weights} is not a readable safetensors file ({exc}).") from exc
    if keys != [PROMPT_KEY]:
        raise AdapterError(f"{weights.name} of a prompt adapter must hold only {PROMPT_KEY!r}; "
                           f"it holds {sorted(keys)}.")
    shape = shapes[PROMPT_KEY]
    if len(shape) != 2 or dtypes[PROMPT_KEY] not in ("F32", "F16"):
        raise AdapterError(f"{PROMPT_KEY} must be a float32 or float16 [n_virtual, hidden] "
                           f"matrix; got {dtypes[PROMPT_KEY]} {list(shape)}.")
    n, hidden = shape
    embed = base.weight_shapes.get("model.embed_tokens.weight")
    if embed is not None and hidden != embed[1]:
        raise AdapterError(f"{PROMPT_KEY} has width {hidden}, but the served base's embeddings "
                           f"have {embed[1]}: this adapter was trained for another base model.")
    if not 1 <= n <= limits.max_virtual_tokens:
        raise AdapterError(f"the prompt adapter has {n} virtual tokens; the server takes 1 to "
                           f"{limits.max_virtual_tokens} (--max-virtual-tokens).")
    _check_manifest(path, base)
    return ValidatedAdapter(name=name, path=path, rank=0, target_modules=(), kind="prompt",
                            num_virtual_tokens=n)


def load_prompt_embeddings(adapter: ValidatedAdapter):
    """The validated prompt adapter's embeddings, float32 numpy [n_virtual, hidden]."""
    import numpy as np

    with safe_open(str(adapter.path / ADAPTER_WEIGHTS), framework="numpy") as fh:
        embeddings = fh.get_tensor(PROMPT_KEY).astype(np.float32)
    if not np.isfinite(embeddings).all():
        raise AdapterError(f"{PROMPT_KEY} of {adapter.path} holds NaN or infinite values.")
    return embeddings


def _check_manifest(path: Path, base: BaseModelInfo) -> None:
    try:
        manifest = read_manifest(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdapterError(f"the adapter's manifest in {path} is not valid JSON ({exc}).") from exc
    manifest = manifest or {}
    if manifest.get(FINGERPRINT_KEY):
        expected, served = manifest[FINGERPRINT_KEY], base.fingerprint
    else:  # a manifest written before the fingerprint, or none
        expected = manifest.get(LEGACY_SHA256_KEY)
        served = base.weights_sha256 if expected else None
    if expected and served and expected != served:
        raise AdapterError("the adapter's manifest says it was trained on a base model with "
                           f"fingerprint {str(expected)[:15]}..., but the served base's is "
                           f"{served[:15]}...: re-train it on this base model.")


def read_base_model_info(model_dir: str | Path) -> BaseModelInfo:
    """Weight shapes from the safetensors headers of a local model directory (no tensor read)."""
    files = weight_files(model_dir)
    if not files:
        logger.warning("base model %s is not a local safetensors directory: adapter shapes and "
                       "fingerprints cannot be checked", model_dir)
        return BaseModelInfo(weight_shapes={})
    shapes = {name: tensor.shape for path in files
              for name, tensor in read_header(path).tensors.items()}
    return BaseModelInfo(weight_shapes=shapes, model_dir=Path(model_dir))
