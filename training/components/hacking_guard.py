"""The reward-hacking guard of `training.rl`: a TrainerCallback that every `every` steps answers
held-out prompts greedily and scores the answers twice, by the training reward (the proxy) and by
the task's exact checker. Both, and their divergence, are logged; when the proxy has risen while
exact accuracy has fallen (each by at least `tolerance` against the best checkpoint so far, the
one of highest exact accuracy, for `patience` evaluations in a row) the guard fires:
`action` "stop" ends training there, "rollback" also restores the best checkpoint's adapter
weights, "log" only records it. With `keep_best` the best checkpoint's weights are restored at
the end of training whether or not the guard fired (the held-out checks as model selection, as
transformers' `load_best_model_at_end` does with an evaluation metric).

divergence = (proxy - proxy at step 0) - (exact - exact at step 0): how much more the proxy has
gained than the truth.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from transformers import TrainerCallback

ACTIONS = ("rollback", "stop", "log")


@dataclass
class GuardPoint:
    step: int
    proxy: float
    exact: float
    divergence: float
    tokens: float  # mean tokens per held-out answer


@dataclass
class GuardReport:
    history: list[GuardPoint] = field(default_factory=list)
    best_step: int = 0
    fired_at: int | None = None  # the step at which the proxy rose while exact fell
    rolled_back_to: int | None = None

    def as_dict(self) -> dict:
        return {"history": [asdict(p) for p in self.history], "best_step": self.best_step,
                "fired_at": self.fired_at, "rolled_back_to": self.rolled_back_to}


class RewardHackingGuard(TrainerCallback):
    """`evaluate(model) -> (proxy, exact, tokens)` on the held-out prompts."""

    def __init__(self, model, evaluate: Callable[[object], tuple[float, float, float]],
                 every: int, tolerance: float = 0.05, patience: int = 2,
                 action: str = "rollback", log_path: Path | None = None,
                 keep_best: bool = False) -> None:
        if action not in ACTIONS:
            raise ValueError(f"guard action must be one of {ACTIONS}, got {action!r}")
        self.model, self.evaluate = model, evaluate
        self.every, self.tolerance, self.patience, self.action = every, tolerance, patience, action
        self.log_path, self.keep_best = log_path, keep_best
        self.report = GuardReport()
        self._best_weights: dict | None = None
        self._strikes = 0

    # --- the checks -----------------------------------------------------------------------

    def check(self, step: int) -> bool:
        """Evaluates at `step`, logs it, keeps the best checkpoint; True when the guard fires."""
        proxy, exact, tokens = self.evaluate(self.model)
        history = self.report.history
        start = history[0] if history else None
        divergence = 0.0 if start is None else (proxy - start.proxy) - (exact - start.exact)
        point = GuardPoint(step, proxy, exact, divergence, tokens)
        history.append(point)
        best = next((p for p in history if p.step == self.report.best_step), point)
        if start is None or exact > best.exact:
            self.report.best_step, self._best_weights = step, self._snapshot()
            self._strikes = 0
        elif (proxy - best.proxy >= self.tolerance and best.exact - exact >= self.tolerance):
            self._strikes += 1
        else:
            self._strikes = 0
        fired = self._strikes >= self.patience and self.report.fired_at is None
        if fired:
            self.report.fired_at = step
        self._log(point, fired)
        return fired

    def _log(self, point: GuardPoint, fired: bool) -> None:
        line = (f"guard step {point.step}: proxy {point.proxy:.3f} exact {point.exact:.3f} "
                f"divergence {point.divergence:+.3f} (best step {self.report.best_step})")
        if fired:
            line += f" -> proxy up while exact down: {self.action}"
        print(line, flush=True)
        if self.log_path is not None:
            with self.log_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({**asdict(point), "fired": fired}) + "\n")

    # --- checkpoints ----------------------------------------------------------------------

    def _snapshot(self) -> dict:
        from peft import get_peft_model_state_dict

        return {k: v.detach().clone() for k, v in get_peft_model_state_dict(self.model).items()}

    def restore_best(self) -> None:
        from peft import set_peft_model_state_dict

        if self._best_weights is not None:
            set_peft_model_state_dict(self.model, self._best_weights)
            self.report.rolled_back_to = self.report.best_step

    # --- TrainerCallback ------------------------------------------------------------------

    def on_train_begin(self, args, state, control, **kwargs):
        self.check(state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.every or not self.check(state.global_step):
            return
        if self.action in ("stop", "rollback"):
            control.should_training_stop = True
        if self.action == "rollback":
            self.restore_best()

    def on_train_end(self, args, state, control, **kwargs):
        last = self.report.history[-1].step if self.report.history else None
        if last != state.global_step:  # the final weights are what gets saved: measure them
            self.check(state.global_step)
        if self.keep_best and self.report.best_step != self.report.history[-1].step:
            self.restore_best()
