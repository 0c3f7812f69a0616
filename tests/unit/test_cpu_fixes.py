"""The CPU LoRA fixes: exact on tiny tensors, and a tripwire if upstream code changes under them."""

import inspect

import pytest
import torch

lora_ops = pytest.importorskip("vllm.lora.ops.torch_ops.lora_ops")

from server.engine import cpu_fixes  # noqa: E402


def test_upstream_still_has_the_bug_we_patch():
    # If this fails, vLLM changed the CPU LoRA ops: re-run the repro in cpu_fixes' docstring
    # and drop or re-validate the patch (and extend TESTED_VLLM_VERSIONS).
    import vllm

    assert vllm.__version__ in cpu_fixes.TESTED_VLLM_VERSIONS
    source = inspect.getsource(lora_ops)
    assert "selected_loras = lora_b_weights[lora_indices_tensor]" in source


def test_fixed_shrink_gives_base_rows_zero_and_adapter_rows_their_own_weights():
    torch.manual_seed(0)
    weights = torch.randn(2, 1, 4, 8)  # [slots, 1, rank, in]
    inputs = torch.randn(3, 8)  # [T, in]
    indices = torch.tensor([-1, 0, 1])
    out = torch.full((3, 4), 7.0)
    original = inspect.unwrap(lora_ops.bgmv_shrink)
    cpu_fixes._base_rows_get_no_lora(original)(inputs, weights, out, indices, 0.5)
    assert torch.equal(out[0], torch.zeros(4))
    for row, slot in ((1, 0), (2, 1)):
        torch.testing.assert_close(out[row], 0.5 * weights[slot, 0] @ inputs[row])


def test_unfixed_shrink_leaks_the_last_adapter_into_base_rows():
    weights = torch.ones(2, 1, 4, 8)
    weights[1] *= 3
    out = torch.zeros(1, 4)
    inspect.unwrap(lora_ops.bgmv_shrink)(torch.ones(1, 8), weights, out, torch.tensor([-1]), 1.0)
    assert torch.equal(out[0], torch.full((4,), 24.0))  # the bug: slot -1 == last slot


def test_upstream_still_rewinds_generators_with_set_offset():
    from vllm.v1.worker import gpu_model_runner

    assert "gen.set_offset(gen.get_offset() - 4)" in inspect.getsource(gpu_model_runner)


def test_discarded_requests_generators_are_hidden_from_the_rewind_and_restored():
    import numpy as np
    from types import SimpleNamespace

    seen = []

    def original(self):
        seen.append(dict(self.input_batch.generators))
        return "result"

    gens = {0: "g0", 1: "g1", 2: "g2"}
    runner = SimpleNamespace(
        input_batch=SimpleNamespace(generators=gens, num_reqs=3),
        discard_request_mask=SimpleNamespace(np=np.array([False, True, False, True])))
    assert cpu_fixes._no_generator_rewind(original)(runner) == "result"
    assert seen == [{0: "g0", 2: "g2"}]  # request 1's generator is not rewound
    assert gens == {0: "g0", 1: "g1", 2: "g2"}
