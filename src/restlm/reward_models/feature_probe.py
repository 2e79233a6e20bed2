"""A saved linear probe that reads more than its head's input: pooled states, log-probabilities, length.

`probe.apply_probe` turns a probe on one layer's `last` state into an ordinary HF classifier. A probe on other
features (`probe_features`: `mean@L`, `logp`, `length`, side by side with `last@L`) has no HF head to live in:
the backbone is saved whole with `probe.json` beside it (the feature set, its layer, the weights), and
`RewardModel.from_pretrained` of that folder gives a `FeatureProbe`, which scores by computing the features and
their dot product with the weights. It is fitted once (`run_probe_model(..., pools=, scalars=)`), never trained
by gradient: `forward` is refused.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from restlm.reward_models.model import RewardModel

PROBE_FILE = "probe.json"


class FeatureProbe(RewardModel):
    """r(prompt, response) = weights . [pools of layer `layer` ..., scalars ...] of one frozen forward pass."""

    def __init__(self, model, tokenizer, kind: str, max_length: int, probe: dict):
        super().__init__(model, tokenizer, kind, max_length)
        self.layer, self.pools, self.scalars = int(probe["layer"]), list(probe["pools"]), list(probe["scalars"])
        self.weights = np.asarray(probe["weights"], dtype=np.float64)
        self.feature_set = probe.get("feature_set")
        self.model.eval()

    @classmethod
    def read(cls, model, tokenizer, kind: str, max_length: int, folder: Path) -> FeatureProbe:
        """The probe saved in `folder` on its loaded backbone; a missing or malformed probe.json is a
        ModelLoadError naming it."""
        from restlm.errors import ModelLoadError

        path = Path(folder) / PROBE_FILE
        try:
            probe = json.loads(path.read_text())
            return cls(model, tokenizer, kind, max_length, probe)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ModelLoadError(str(folder), f"{path}: not a feature probe ({type(error).__name__}: {error})") from None

    def settings(self) -> dict:
        return {**super().settings(), "probe": PROBE_FILE}

    def features(self, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 16) -> np.ndarray:
        """The rows the weights read, one per (prompt, response)."""
        from restlm.reward_models.probe_features import probe_features

        found = probe_features(self, prompts, responses, [self.layer], self.pools, self.scalars, batch_size)
        return np.hstack([*(found[f"{pool}@{self.layer}"] for pool in self.pools), *(found[s] for s in self.scalars)])

    def forward(self, batch, through=None):
        raise ValueError("a feature probe is fitted by logistic regression (restlm reward-model --probe), not trained "
                         "by gradient")

    def score(self, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 16) -> np.ndarray:
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        return self.features(prompts, responses, batch_size).astype(np.float64) @ self.weights

    def save(self, path: str | Path) -> None:
        from restlm.atomic_files import write_json
        from restlm.distributed import process_state

        super().save(path)
        if process_state().is_main_process:
            write_json(Path(path) / PROBE_FILE, {"feature_set": self.feature_set, "layer": self.layer,
                                                 "pools": self.pools, "scalars": self.scalars,
                                                 "weights": self.weights.tolist()})
