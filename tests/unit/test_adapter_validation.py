"""Adapter validation: every bad adapter gets a clear AdapterError before reaching the engine."""

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from adapters.errors import AdapterError, AdapterNotFound
from adapters.manifest import (FINGERPRINT_KEY, LEGACY_SHA256_KEY, weights_sha256,
                               write_manifest)
from adapters.validation import (
    AdapterLimits,
    BaseModelInfo,
    load_prompt_embeddings,
    read_base_model_info,
    validate_adapter,
)

PREFIX = "base_model.model.model.layers.0.self_attn"


@pytest.fixture
def base(tmp_path):
    base_dir = tmp_path / "base"
    base_dir.mkdir()
    save_file({"model.layers.0.self_attn.q_proj.weight": np.zeros((8, 6), np.float32),
               "model.layers.0.self_attn.o_proj.weight": np.zeros((6, 8), np.float32)},
              str(base_dir / "model.safetensors"))
    return read_base_model_info(base_dir)


@pytest.fixture
def root(tmp_path):
    (tmp_path / "adapters").mkdir()
    return tmp_path / "adapters"


@pytest.fixture
def limits(root):
    return AdapterLimits(allowed_roots=(root,), max_rank=8, max_bytes=1 << 20)


def make_adapter(directory: Path, rank=4, config=None, tensors=None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    cfg = {"peft_type": "LORA", "r": rank, "lora_alpha": 8, "bias": "none",
           "target_modules": ["q_proj"], "base_model_name_or_path": "base"}
    cfg.update(config or {})
    (directory / "adapter_config.json").write_text(json.dumps(cfg))
    if tensors is None:
        tensors = {f"{PREFIX}.q_proj.lora_A.weight": np.zeros((rank, 6), np.float32),
                   f"{PREFIX}.q_proj.lora_B.weight": np.zeros((8, rank), np.float32)}
    save_file(tensors, str(directory / "adapter_model.safetensors"))
    return directory


def rejected(name, path, base, limits, error=AdapterError) -> AdapterError:
    with pytest.raises(error) as info:
        validate_adapter(name, str(path), base, limits)
    assert info.value.message
    return info.value


def test_a_good_adapter_is_accepted(root, base, limits):
    adapter = validate_adapter("good", str(make_adapter(root / "good")), base, limits)
    assert adapter.rank == 4 and adapter.target_modules == ("q_proj",)
    assert adapter.path == (root / "good").resolve()


def test_missing_path_is_404(root, base, limits):
    err = rejected("x", root / "nope", base, limits, AdapterNotFound)
    assert err.status_code == 404 and err.param == "lora_path"


def test_path_outside_root_and_dotdot_and_symlink_out_are_refused(tmp_path, root, base, limits):
    outside = make_adapter(tmp_path / "outside")
    assert "outside the allowed adapter roots" in rejected("x", outside, base, limits).message
    assert "outside" in rejected("x", f"{root}/../outside", base, limits).message
    (root / "link").symlink_to(outside)
    assert "outside the allowed" in rejected("x", root / "link", base, limits).message


def test_symlink_inside_root_is_fine(root, base, limits):
    target = make_adapter(root / "real")
    (root / "alias").symlink_to(target)
    assert validate_adapter("alias", str(root / "alias"), base, limits).path == target.resolve()


@pytest.mark.parametrize("name", ["", "../x", "a b", "x" * 65, "-lead"])
def test_bad_names_are_refused(root, base, limits, name):
    err = rejected(name, make_adapter(root / "ok"), base, limits)
    assert err.param == "lora_name"


def test_corrupt_safetensors_is_refused(root, base, limits):
    path = make_adapter(root / "corrupt")
    (path / "adapter_model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    assert "not a readable safetensors" in rejected("x", path, base, limits).message


def test_truncated_weights_are_refused(root, base, limits):
    path = make_adapter(root / "truncated")
    weights = path / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-16])  # the header promises more data
    assert "not a readable safetensors" in rejected("x", path, base, limits).message


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_weights_that_are_not_finite_are_refused(root, base, limits, value):
    a = np.zeros((4, 6), np.float32)
    a[1, 2] = value
    path = make_adapter(root / "nan", tensors={
        f"{PREFIX}.q_proj.lora_A.weight": a,
        f"{PREFIX}.q_proj.lora_B.weight": np.zeros((8, 4), np.float32)})
    assert "NaN or infinite" in rejected("x", path, base, limits).message


def test_weights_that_are_not_floats_are_refused(root, base, limits):
    path = make_adapter(root / "ints", tensors={
        f"{PREFIX}.q_proj.lora_A.weight": np.zeros((4, 6), np.int8),
        f"{PREFIX}.q_proj.lora_B.weight": np.zeros((8, 4), np.int8)})
    assert "float32, float16 or bfloat16" in rejected("x", path, base, limits).message


def test_pickle_only_adapter_is_refused_without_unpickling(root, base, limits):
    path = make_adapter(root / "pickle")
    (path / "adapter_model.safetensors").unlink()
    (path / "adapter_model.bin").write_bytes(b"not even a pickle; must never be opened")
    assert "pickle" in rejected("x", path, base, limits).message


@pytest.mark.parametrize("config, words", [
    ({"peft_type": "IA3"}, "LORA, PROMPT_TUNING and P_TUNING adapters are served"),
    ({"bias": "all"}, "bias"),
    ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
    ({"target_modules": ["q_proj", "lm_head"]}, "lm_head"),
    ({"use_dora": True}, "Merge it into the base"),
    ({"use_dora": True}, "serve that with --model DIR"),
    ({"peft_type": "PREFIX_TUNING"}, "every layer's attention, which vLLM cannot serve"),
    ({"r": 16}, "max LoRA rank"),
    ({"rank_pattern": {"q_proj": 32}}, "max LoRA rank"),
])
def test_unservable_configs_are_refused(root, base, limits, config, words):
    assert words in rejected("x", make_adapter(root / "a", config=config), base, limits).message


def test_a_model_directory_is_refused_with_the_way_to_serve_it(root, base, limits):
    """A merged export (training.lora --method dora|delta_lora) given as an adapter: said to be a
    model, served with --model; a directory with neither config stays 'no adapter_config.json'."""
    merged = root / "merged"
    merged.mkdir()
    (merged / "config.json").write_text(json.dumps({"model_type": "llama"}))
    save_file({"model.layers.0.self_attn.q_proj.weight": np.zeros((8, 6), np.float32)},
              str(merged / "model.safetensors"))
    message = rejected("x", merged, base, limits).message
    assert "model directory" in message
    assert f"python -m server --model {merged.resolve()}" in message
    (root / "empty").mkdir()
    message = rejected("x", root / "empty", base, limits).message
    assert "no adapter_config.json" in message and "--model" not in message


def test_rank_in_weights_above_limit_is_refused(root, base, limits):
    tensors = {f"{PREFIX}.q_proj.lora_A.weight": np.zeros((16, 6), np.float32),
               f"{PREFIX}.q_proj.lora_B.weight": np.zeros((8, 16), np.float32)}
    path = make_adapter(root / "a", rank=4, tensors=tensors)
    assert "rank 16" in rejected("x", path, base, limits).message


def test_wrong_base_model_is_refused_by_shape_and_by_module(root, base, limits):
    wrong_shape = {f"{PREFIX}.q_proj.lora_A.weight": np.zeros((4, 7), np.float32),
                   f"{PREFIX}.q_proj.lora_B.weight": np.zeros((8, 4), np.float32)}
    err = rejected("x", make_adapter(root / "a", tensors=wrong_shape), base, limits)
    assert "another base model" in err.message
    unknown = {f"{PREFIX}.k_proj.lora_A.weight": np.zeros((4, 6), np.float32)}
    err = rejected("x", make_adapter(root / "b", tensors=unknown), base, limits)
    assert "another base model" in err.message


def test_manifest_fingerprint_mismatch_is_refused(root, base, limits):
    path = make_adapter(root / "a")
    write_manifest(path, {FINGERPRINT_KEY: "v2:" + "0" * 64})
    assert "re-train it on this base model" in rejected("x", path, base, limits).message
    write_manifest(path, {FINGERPRINT_KEY: base.fingerprint})
    assert validate_adapter("x", str(path), base, limits).rank == 4


def test_a_manifest_from_before_the_fingerprint_is_checked_by_its_sha256(root, base, limits):
    path = make_adapter(root / "a")
    write_manifest(path, {LEGACY_SHA256_KEY: "0" * 64})
    assert "re-train it on this base model" in rejected("x", path, base, limits).message
    write_manifest(path, {LEGACY_SHA256_KEY: weights_sha256(base.model_dir)})
    assert validate_adapter("x", str(path), base, limits).rank == 4


def test_oversize_weights_are_refused(root, base):
    tiny = AdapterLimits(allowed_roots=(root,), max_rank=8, max_bytes=64)
    assert "above the limit" in rejected("x", make_adapter(root / "a"), base, tiny).message


def test_non_lora_tensor_is_refused(root, base, limits):
    tensors = {"base_model.model.model.embed_tokens.weight": np.zeros((4, 6), np.float32)}
    assert "not a LoRA" in rejected("x", make_adapter(root / "a", tensors=tensors), base, limits).message


def test_base_that_is_not_a_local_directory_skips_shape_checks(root, limits, tmp_path):
    remote = read_base_model_info(tmp_path / "not-a-local-model")
    assert remote.weight_shapes == {} and remote.fingerprint is None
    assert validate_adapter("x", str(make_adapter(root / "a")), remote, limits).rank == 4


def make_prompt_adapter(directory: Path, embeddings, peft_type="PROMPT_TUNING", **config):
    directory.mkdir(parents=True, exist_ok=True)
    cfg = {"peft_type": peft_type, "task_type": "CAUSAL_LM",
           "num_virtual_tokens": len(embeddings), "num_transformer_submodules": 1, **config}
    (directory / "adapter_config.json").write_text(json.dumps(cfg))
    save_file({"prompt_embeddings": embeddings}, str(directory / "adapter_model.safetensors"))
    return directory


@pytest.fixture
def base_with_embeddings():
    return BaseModelInfo(weight_shapes={"model.embed_tokens.weight": (100, 6)})


@pytest.mark.parametrize("peft_type", ["PROMPT_TUNING", "P_TUNING"])
def test_a_prompt_adapter_is_validated_and_its_embeddings_loaded(root, base_with_embeddings,
                                                                 limits, peft_type):
    rows = np.arange(24, dtype=np.float32).reshape(4, 6)
    path = make_prompt_adapter(root / "p", rows, peft_type)
    adapter = validate_adapter("p", str(path), base_with_embeddings, limits)
    assert adapter.kind == "prompt" and adapter.num_virtual_tokens == 4
    assert np.array_equal(load_prompt_embeddings(adapter), rows)


@pytest.mark.parametrize("tensors, words", [
    ({"prompt_embeddings": np.zeros((4, 5), np.float32)}, "another base model"),
    ({"prompt_embeddings": np.zeros((200, 6), np.float32)}, "--max-virtual-tokens"),
    ({"prompt_embeddings": np.zeros((4, 6), np.int32)}, "float32 or float16"),
    ({"prompt_embeddings": np.zeros((4, 6), np.float32),
      "extra": np.zeros((1,), np.float32)}, "must hold only"),
])
def test_a_bad_prompt_adapter_is_refused(root, base_with_embeddings, limits, tensors, words):
    path = root / "p"
    make_prompt_adapter(path, np.zeros((4, 6), np.float32))
    save_file(tensors, str(path / "adapter_model.safetensors"))
    assert words in rejected("p", path, base_with_embeddings, limits).message


def test_non_finite_prompt_embeddings_never_reach_the_engine(root, base_with_embeddings, limits):
    rows = np.zeros((2, 6), np.float32)
    rows[1, 3] = np.nan
    adapter = validate_adapter("p", str(make_prompt_adapter(root / "p", rows)),
                               base_with_embeddings, limits)
    with pytest.raises(AdapterError, match="NaN"):
        load_prompt_embeddings(adapter)
