"""A saved linear probe that reads more than its head's input: pooled states, log-probabilities, length.

`probe.apply_probe` turns a probe on one layer's `last` state into an ordinary HF classifier. A probe on other
features (`probe_features`: `mean@L`, `logp`, `length`, side by side with `last@L`) has no HF head to live in:
the backbone is saved (whole when `logp` reads its last layer, else cut to the layer L read, which scores the
same and faster) with `probe.json` beside it (the feature set, its layer, the weights), and
`RewardModel.from_pretrained` of that folder gives a `FeatureProbe`, which scores by computing the features and
their dot product with the weights. Its HF `score` head is zeroed: read by plain transformers, the folder rewards
everything 0, never a random head's numbers. It is fitted once (`run_probe_model(..., pools=, scalars=)`), never
trained by gradient, and reads the window it was fitted at (max_length: `length` and `logp` depend on it).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from restlm.errors import ModelLoadError, RestlmError
from restlm.reward_models.model import RewardModel

PROBE_FILE = "probe.json"


class FeatureProbe(RewardModel):
    """r(prompt, response) = weights . [pools of layer `layer` ..., scalars ...] of one frozen forward pass."""

    def __init__(self, model, tokenizer, kind: str, max_length: int, probe: dict):
        super().__init__(model, tokenizer, kind, max_length)
        self.layer, self.pools, self.scalars = int(probe["layer"]), list(probe["pools"]), list(probe["scalars"])
        self.weights = np.asarray(probe["weights"], dtype=np.float64)
        self.feature_set = probe.get("feature_set")
        problem = self.problem()
        if problem:
            raise ValueError(problem)
        from restlm.reward_models.probe import cut_backbone, one_output_head

        if "logp" not in self.scalars and self.pools:  # the layers past the one read are never needed
            cut_backbone(self, self.layer)

        with torch.no_grad():  # what plain transformers would read: 0 for everything, not a random head
            head = one_output_head(self)
            head.weight.zero_()
            if head.bias is not None:
                head.bias.zero_()
        self.model.eval()

    def problem(self) -> str | None:
        """What makes these settings unusable on this backbone, or None."""
        from restlm.reward_models.probe import layer_count, one_output_head
        from restlm.reward_models.probe_features import POOLS, SCALARS

        if unknown := [name for name in (*self.pools, *self.scalars) if name not in (*POOLS, *SCALARS)]:
            return f"unknown features {unknown}"
        if not 1 <= self.layer <= (count := layer_count(self)):
            return f"layer {self.layer} is outside 1..{count}"
        width = len(self.pools) * one_output_head(self).in_features + sum(SCALARS[s] for s in self.scalars)
        if self.weights.shape != (width,):
            return f"{self.weights.size} weights where its features have {width} columns"
        return None

    @classmethod
    def read(cls, model, tokenizer, kind: str, max_length: int, folder: Path, asked: dict) -> FeatureProbe:
        """The probe saved in `folder` on its loaded backbone. One ModelLoadError naming the folder when probe.json
        is missing, malformed or does not fit the backbone, or when `asked` (from_pretrained's lora, max_length)
        wants what a fitted probe cannot be."""
        if asked.get("lora"):
            raise ModelLoadError(str(folder), "a fitted feature probe takes no LoRA adapters: it is not trained")
        if asked.get("max_length") not in (None, max_length):
            raise ModelLoadError(str(folder), f"a feature probe reads the {max_length} tokens it was fitted at, "
                                              f"not {asked['max_length']}")
        path = Path(folder) / PROBE_FILE
        try:
            probe = json.loads(path.read_text())
            probe = {key: probe[key] for key in ("layer", "pools", "scalars", "weights", "feature_set")}
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ModelLoadError(str(folder), f"{path}: not a feature probe ({type(error).__name__}: {error})") from None
        try:
            return cls(model, tokenizer, kind, max_length, probe)
        except (ValueError, TypeError) as error:
            raise ModelLoadError(str(folder), f"{path}: {error}") from None

    def settings(self) -> dict:
        return {**super().settings(), "probe": PROBE_FILE}

    def features(self, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 16) -> np.ndarray:
        """The rows the weights read, one per (prompt, response), side by side as the fit saw them."""
        from restlm.reward_models.probe_features import probe_candidates, probe_features

        found = probe_features(self, prompts, responses, [self.layer], self.pools, self.scalars, batch_size)
        (rows,) = probe_candidates(found, [self.layer], self.pools, self.scalars).values()
        return rows

    def forward(self, batch, through=None):
        raise RestlmError("a feature probe is fitted by logistic regression (restlm reward-model --probe), not "
                          "trained by gradient; start from its backbone instead")

    def score(self, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 16) -> np.ndarray:
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        return self.features(prompts, responses, batch_size).astype(np.float64) @ self.weights

    def write_extra(self, folder: Path) -> None:
        from restlm.atomic_files import write_json

        write_json(folder / PROBE_FILE, {"feature_set": self.feature_set, "layer": self.layer, "pools": self.pools,
                                         "scalars": self.scalars, "weights": self.weights.tolist()})
