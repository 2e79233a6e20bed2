"""An ensemble of reward models: the mean of its members' standardised rewards, less a share of their spread.

Members trained from other seeds (or on other backbones) disagree most where the data say least,
which is where a policy that optimises one reward model finds its errors. Averaging them is a more
accurate reward; subtracting `spread_penalty` times their standard deviation is the
uncertainty-weighted optimisation of Coste et al. (2023), "Reward Model Ensembles Help Mitigate
Overoptimization". Each member's rewards are standardised first (centre and scale measured on
training responses, never on held-out ones): a Bradley-Terry reward is defined only up to a constant
and its scale differs from seed to seed.

Saved as a folder: ENSEMBLE_FILE (the members' folders, centres, scales, penalty) beside one
reward-model folder per member; `reward_model:PATH` loads it like a single reward model.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from restlm.errors import ModelLoadError
from restlm.reward_models.model import RewardModel

ENSEMBLE_FILE = "ensemble.json"


def is_ensemble(path: str | Path) -> bool:
    return (Path(path).expanduser() / ENSEMBLE_FILE).is_file()


class RewardEnsemble:
    """Scores like a RewardModel (`score`, `save`, `from_pretrained`); not trainable as one piece."""

    def __init__(self, members: Sequence[RewardModel], centres: Sequence[float], scales: Sequence[float],
                 spread_penalty: float = 0.0):
        if not members or not len(members) == len(centres) == len(scales):
            raise ValueError(f"{len(members)} members, {len(centres)} centres and {len(scales)} scales")
        if min(scales) <= 0:
            raise ValueError(f"every member's scale must be positive, got {list(scales)}")
        self.members, self.spread_penalty = list(members), float(spread_penalty)
        self.centres, self.scales = np.asarray(centres, dtype=float), np.asarray(scales, dtype=float)

    @classmethod
    def calibrated(cls, members: Sequence[RewardModel], prompts: Sequence[str], responses: Sequence[str],
                   spread_penalty: float = 0.0, batch_size: int = 16) -> RewardEnsemble:
        """Centre and scale of each member = mean and std of its rewards on (prompt, response) rows."""
        raw = np.stack([m.score(prompts, responses, batch_size) for m in members])
        return cls(members, raw.mean(axis=1), np.maximum(raw.std(axis=1), 1e-8), spread_penalty)

    def member_scores(self, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 16) -> np.ndarray:
        """Standardised rewards, one row per member, one column per (prompt, response)."""
        raw = np.stack([m.score(prompts, responses, batch_size) for m in self.members])
        return (raw - self.centres[:, None]) / self.scales[:, None]

    def score(self, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 16) -> np.ndarray:
        """mean - spread_penalty * std over the members' standardised rewards (population std)."""
        return self.combine(self.member_scores(prompts, responses, batch_size))

    def combine(self, z: np.ndarray) -> np.ndarray:
        """The ensemble's rewards from `member_scores`' rows: their mean less spread_penalty x their std."""
        return z.mean(axis=0) - self.spread_penalty * z.std(axis=0)

    def save(self, path: str | Path) -> None:
        """Each member into path/member_I, then ENSEMBLE_FILE (main process only under several processes)."""
        from restlm.atomic_files import write_json
        from restlm.distributed import process_state

        path = Path(path)
        names = [f"member_{i}" for i in range(len(self.members))]
        for member, name in zip(self.members, names, strict=True):
            member.save(path / name)
        state = process_state()
        if state.is_main_process:
            write_json(path / ENSEMBLE_FILE, {"members": names, "centres": self.centres.tolist(),
                                              "scales": self.scales.tolist(), "spread_penalty": self.spread_penalty})
        state.wait_for_everyone()

    @classmethod
    def from_pretrained(cls, path: str | Path, spread_penalty: float | None = None, max_length: int | None = None,
                        device: str | None = None) -> RewardEnsemble:
        """Load a saved ensemble; `spread_penalty` overrides the saved one. ModelLoadError when malformed."""
        path = Path(path).expanduser()
        file = path / ENSEMBLE_FILE
        try:
            spec = json.loads(file.read_text())
            names, centres, scales = spec["members"], spec["centres"], spec["scales"]
            penalty = spec.get("spread_penalty", 0.0) if spread_penalty is None else spread_penalty
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
            raise ModelLoadError(str(path), f"{file} is not a reward ensemble ({type(error).__name__}: {error})") from None
        members = [RewardModel.from_pretrained(str(path / name), max_length=max_length, device=device) for name in names]
        try:
            return cls(members, centres, scales, penalty)
        except ValueError as error:
            raise ModelLoadError(str(path), f"{file}: {error}") from None
