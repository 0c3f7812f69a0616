"""The reward-hacking guard (training/components/hacking_guard.py) on scripted histories of
(proxy reward, exact accuracy): when it fires, what it logs, and the rollback to the best
checkpoint's adapter weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import TrainerControl, TrainerState

from training.components.hacking_guard import RewardHackingGuard


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, x):
        return self.lin(x)


def lora_model():
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    return get_peft_model(Tiny(), LoraConfig(r=2, target_modules=["lin"], init_lora_weights=False))


def scripted(history: list[tuple[float, float]]):
    """evaluate() returning the history's (proxy, exact) in turn (one check too many raises)."""
    calls = iter(history)
    return lambda model: (*next(calls), 10.0)


def run(history: list[tuple[float, float]], patience: int = 2, tolerance: float = 0.05,
        action: str = "rollback", log_path: Path | None = None):
    """The guard checked at steps 0, 5, 10, ...: the step at which it fired (or None)."""
    guard = RewardHackingGuard(lora_model(), scripted(history), every=5, tolerance=tolerance,
                               patience=patience, action=action, log_path=log_path)
    fired = [5 * i for i in range(len(history)) if guard.check(5 * i)]
    assert len(fired) <= 1
    return guard, (fired[0] if fired else None)


def test_proxy_up_while_exact_down_fires_after_patience_checks() -> None:
    guard, fired = run([(0.5, 0.5), (0.6, 0.6), (0.7, 0.5), (0.8, 0.4), (0.9, 0.3)])
    assert fired == 15  # step 10: one strike, step 15: two
    assert guard.report.best_step == 5 and guard.report.fired_at == 15
    divergence = [round(p.divergence, 6) for p in guard.report.history]
    assert divergence == [0.0, 0.0, 0.2, 0.4, 0.6]  # proxy gain minus exact gain since step 0


def test_both_rising_is_learning_not_hacking() -> None:
    guard, fired = run([(0.2, 0.1), (0.4, 0.3), (0.6, 0.4), (0.8, 0.6)])
    assert fired is None and guard.report.best_step == 15


def test_exact_falling_with_a_flat_proxy_does_not_fire() -> None:
    _, fired = run([(0.5, 0.5), (0.5, 0.3), (0.52, 0.2), (0.5, 0.1)])
    assert fired is None


def test_a_strike_followed_by_recovery_resets_the_count() -> None:
    _, fired = run([(0.5, 0.5), (0.7, 0.4), (0.7, 0.49), (0.8, 0.4), (0.6, 0.5)])
    assert fired is None
    _, fired = run([(0.5, 0.5), (0.7, 0.4), (0.7, 0.49), (0.8, 0.4)], patience=1)
    assert fired == 5


def test_moves_inside_the_tolerance_are_noise() -> None:
    _, fired = run([(0.5, 0.5), (0.53, 0.47), (0.54, 0.46), (0.54, 0.46)], tolerance=0.05)
    assert fired is None
    _, fired = run([(0.5, 0.5), (0.53, 0.47), (0.54, 0.46)], tolerance=0.02)
    assert fired == 10


def test_it_fires_once_and_logs_every_check(tmp_path: Path) -> None:
    log = tmp_path / "guard.jsonl"
    guard, fired = run([(0.5, 0.5), (0.7, 0.3), (0.8, 0.2), (0.9, 0.1), (1.0, 0.0)],
                       log_path=log)
    assert fired == 10 and guard.report.fired_at == 10
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["step"] for line in lines] == [0, 5, 10, 15, 20]
    assert [line["fired"] for line in lines] == [False, False, True, False, False]
    assert lines[2]["proxy"] == 0.8 and lines[2]["exact"] == 0.2


def lora_weights(model) -> dict[str, torch.Tensor]:
    from peft import get_peft_model_state_dict

    return {k: v.clone() for k, v in get_peft_model_state_dict(model).items()}


def perturb(model, by: float) -> None:
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.add_(by)


def callback_run(action: str, history: list[tuple[float, float]], keep_best: bool = False):
    """Drives the guard as the Trainer does (every=1): train begin, then a step at a time, the
    adapter weights moving each step; returns the guard, the weights at each check, the final
    weights and the step training stopped at."""
    model = lora_model()
    guard = RewardHackingGuard(model, scripted(history), every=1, tolerance=0.05, patience=1,
                               action=action, keep_best=keep_best)
    args = None  # the guard reads only the state and the control
    state, control = TrainerState(), TrainerControl()
    seen = []
    guard.on_train_begin(args, state, control)
    seen.append(lora_weights(model))
    for step in range(1, len(history)):
        perturb(model, 0.1)
        state.global_step = step
        seen.append(lora_weights(model))
        guard.on_step_end(args, state, control)
        if control.should_training_stop:
            break
    guard.on_train_end(args, state, control)
    return guard, seen, lora_weights(model), state.global_step


HACKED = [(0.5, 0.5), (0.6, 0.7), (0.8, 0.5), (0.9, 0.4)]  # best at 1, fires at 2


def test_rollback_restores_the_best_checkpoints_adapter_and_stops() -> None:
    guard, seen, final, stopped = callback_run("rollback", HACKED)
    assert stopped == 2 and guard.report.rolled_back_to == 1
    assert all(torch.equal(final[k], seen[1][k]) for k in final)
    assert not all(torch.equal(final[k], seen[2][k]) for k in final)
    assert [p.step for p in guard.report.history] == [0, 1, 2]  # no extra check at the end


def test_stop_keeps_the_last_weights_and_log_only_records() -> None:
    guard, seen, final, stopped = callback_run("stop", HACKED)
    assert stopped == 2 and guard.report.rolled_back_to is None
    assert all(torch.equal(final[k], seen[2][k]) for k in final)
    guard, seen, final, stopped = callback_run("log", HACKED)
    assert stopped == 3 and guard.report.fired_at == 2 and guard.report.rolled_back_to is None
    assert all(torch.equal(final[k], seen[3][k]) for k in final)


def test_keep_best_restores_the_best_checkpoint_at_the_end_without_firing() -> None:
    declining = [(0.5, 0.5), (0.5, 0.7), (0.5, 0.6), (0.5, 0.55)]  # exact falls, proxy flat
    guard, seen, final, stopped = callback_run("log", declining, keep_best=True)
    assert stopped == 3 and guard.report.fired_at is None and guard.report.rolled_back_to == 1
    assert all(torch.equal(final[k], seen[1][k]) for k in final)
    guard, seen, final, _ = callback_run("log", declining)
    assert guard.report.rolled_back_to is None
    assert all(torch.equal(final[k], seen[3][k]) for k in final)


def test_keep_best_leaves_the_last_weights_when_they_are_the_best() -> None:
    rising = [(0.5, 0.5), (0.5, 0.6), (0.5, 0.7)]
    guard, seen, final, _ = callback_run("log", rising, keep_best=True)
    assert guard.report.rolled_back_to is None
    assert all(torch.equal(final[k], seen[2][k]) for k in final)


def test_an_unknown_action_is_refused() -> None:
    with pytest.raises(ValueError, match="rollback"):
        RewardHackingGuard(None, scripted([]), every=1, action="panic")
