"""What a request that leaves `temperature` / `top_p` unset samples at: the model's
generation config where it sets them (vLLM's `--generation-config auto`), else OpenAI's 1.0.

A single pass the server decides to decode greedily (server/openai/serving.py) overrides the
temperature; these are the defaults of a pass that samples (a plain request for `n` samples)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplingDefaults:
    temperature: float = 1.0
    top_p: float = 1.0

    @classmethod
    def from_model_dir(cls, model_dir: str | Path) -> SamplingDefaults:
        """The model's `generation_config.json` values, where it sets them (only the keys it
        writes, as vLLM reads them); the OpenAI defaults for the rest, or for a directory
        without one."""
        path = Path(model_dir) / "generation_config.json"
        try:
            config = json.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:  # a bad file costs the defaults, not the server
            log.warning("%s unreadable (%s); sampling defaults are OpenAI's", path, exc)
            return cls()
        values = {key: float(config[key]) for key in ("temperature", "top_p")
                  if isinstance(config.get(key), (int, float)) and config[key] > 0}
        return cls(**values)
