"""The one safetensors header reader: what the library wrote, read back without tensor data."""

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from adapters.safetensors_header import read_header, weight_files
from training.components.method_choice import safetensors_parameters

TENSORS = {"model.embed_tokens.weight": np.arange(12, dtype=np.float32).reshape(3, 4),
           "model.norm.weight": np.ones(4, np.float16)}


def test_the_header_says_what_the_library_wrote(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file(TENSORS, str(path), metadata={"format": "pt"})
    header = read_header(path)
    assert header.metadata == {"format": "pt"} and header.file_size == path.stat().st_size
    assert {name: (t.dtype, t.shape) for name, t in header.tensors.items()} == {
        "model.embed_tokens.weight": ("F32", (3, 4)), "model.norm.weight": ("F16", (4,))}
    data = path.read_bytes()
    for name, tensor in header.tensors.items():  # the byte ranges are the tensors' own bytes
        assert data[tensor.begin:tensor.end] == TENSORS[name].tobytes()


def test_parameters_are_counted_over_every_shard(tmp_path):
    save_file(dict(list(TENSORS.items())[:1]), str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file(dict(list(TENSORS.items())[1:]), str(tmp_path / "model-00002-of-00002.safetensors"))
    assert [p.name for p in weight_files(tmp_path)] == ["model-00001-of-00002.safetensors",
                                                        "model-00002-of-00002.safetensors"]
    assert safetensors_parameters(tmp_path) == 12 + 4
    assert weight_files(tmp_path / "absent") == []


def raw(entries) -> bytes:
    text = json.dumps(entries).encode()
    return len(text).to_bytes(8, "little") + text


@pytest.mark.parametrize(("content", "says"), [
    (b"\x02\x00", "header length"),
    (b"\xff" * 8 + b"{}", "header length"),
    (b"\x04\x00\x00\x00\x00\x00\x00\x00{not", "not JSON"),
    (raw([]), "not a JSON object"),
    (raw({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}),
     "entry of 'w'"),  # its 8 bytes of data are missing
    (raw({"w": {"dtype": "F32", "shape": [2, -1], "data_offsets": [0, 0]}}), "entry of 'w'"),
    (raw({"w": {"dtype": "F32", "shape": [0]}}), "entry of 'w'"),
])
def test_a_damaged_header_says_what_is_wrong(tmp_path, content, says):
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=says):
        read_header(path)
