"""Reinforced Self-Training (Gulcehre et al., 2023): Grow, then Improve steps at rising thresholds.

Grow: the current policy samples outputs for drawn training inputs; the reward scores them and
the original data. Improve: keep what passes the step's threshold, fine-tune on it at a lower
learning rate than the step before, continuing from the previous policy.

Works for any `Policy` (classifier, seq2seq, causal) and any `Reward`. Every Grow and Improve
step is a stage of the run directory, so a killed run resumes at the stage it was in.
"""
from __future__ import annotations

import dataclasses
import tempfile
import time
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from restlm import run_layout as layout
from restlm.atomic_files import read_jsonl
from restlm.config import RestConfig, TrainConfig
from restlm.data.examples import Example
from restlm.errors import ConfigError, NonFiniteError, RunDirError
from restlm.guards import distinct_n
from restlm.human_feedback import rewards_from_people
from restlm.losses import LOSS_NEEDS
from restlm.policies.base import Policy, TrainItem
from restlm.rest_guards import GENERATIVE, GrowGuards
from restlm.rewards.base import Reward, binarised
from restlm.runs import RunDir, StageRunner
from restlm.thresholds import improve_masks
from restlm.training import train_policy


def stage_seed(seed: int, key: str) -> int:
    """A seed for one stage: the same on every run and after a resume."""
    return (seed * 7919 + zlib.crc32(key.encode())) % (2**31)


def gold_output(example: Example):
    return example.label if example.label is not None else example.target


@dataclass
class GrownSet:
    """The augmented data of one Grow step: each row an example, an output, its reward."""

    examples: list[Example]
    outputs: list
    rewards: np.ndarray
    sources: list[str]  # 'original' or 'grown'
    groups: list[str]  # the input each output belongs to (for per-input thresholds)
    ref_log_probs: list[float | None]  # log-prob under the Grow step's policy, for losses with a reference
    guard_log_probs: list[float | None]  # the same for the guard's sample of grown rows (KL to the Grow policy)


def check_rest_config(config: RestConfig, policy: Policy) -> None:
    """ConfigError for a ReST setting this policy cannot take (called before a run writes anything)."""
    if config.improve_kl_coef and getattr(policy, "kind", None) not in GENERATIVE:
        raise ConfigError("rest.improve_kl_coef", f"needs a causal or seq2seq policy, not {getattr(policy, 'kind', '?')}")


class ReST:
    """ReST on `policy` with `reward` (a Reward, a name like 'nll' or 'chrf', or a function).

        ReST(policy=policy, reward="nll", train_data=train, evaluate=evaluate, config=RestConfig()).run(grow_size=100)

    `evaluate(policy) -> {'dev_accuracy': ..}` selects the best step (`selection_metric`). Each Grow
    and Improve step is a stage of the run directory `run_dir` (or of the `stages` runner of a
    larger experiment), so a resumed run skips what is done.
    """

    def __init__(self, policy: Policy, reward: Reward | str | Callable, train_data: list[Example],
                 evaluate: Callable[[Policy], dict], config: RestConfig | None = None,
                 train_config: TrainConfig | None = None, stages: StageRunner | None = None,
                 run_dir: str | None = None, selection_metric: str = "dev_accuracy",
                 record_train_nll: bool = False, keep_checkpoints: str = "best"):
        from restlm.rewards import build_reward

        self.config, self.train_config = config or RestConfig(), train_config or TrainConfig()
        check_rest_config(self.config, policy)
        self.policy, self.train_data, self.evaluate = policy, train_data, evaluate
        self.reward = build_reward(reward, self.config.normalise_reward)
        if self.config.binary_reward_threshold is not None:
            self.reward = binarised(self.reward, self.config.binary_reward_threshold)
        # people's ratings replace the reward's scores in the Improve steps, higher better
        self.higher_is_better = self.reward.higher_is_better or bool(self.config.human_feedback)
        if stages is None:
            run = RunDir(run_dir or tempfile.mkdtemp(prefix="restlm-"), is_main=policy.accelerator.is_main_process)
            if run.holds_run():
                run.resume()
            else:
                run.create({"rest": dataclasses.asdict(self.config), "train": dataclasses.asdict(self.train_config)})
            stages = StageRunner(run, policy, in_memory="start")
        self.stages, self.run_dir = stages, stages.run
        self.selection_metric, self.record_train_nll = selection_metric, record_train_nll
        self.keep_checkpoints = keep_checkpoints
        self.guards = GrowGuards(self.config, policy, stages)

    def run(self, grow_size: int | None = None, seed: int = 0) -> list[dict]:
        """ReST from the policy as given; returns one record per Improve step (with G, I and metrics)."""
        try:
            start = self.stages("start/eval", lambda key: self.evaluate(self.policy), after="start", trains=False)
            return self.fit(grow_size, seed, prefix=layout.STANDALONE, start="start", start_score=start[self.selection_metric])
        finally:
            self.run_dir.close()

    # ---------------------------------------------------------------- the algorithm
    def fit(self, grow_size: int | None, seed: int, prefix: str, start: str, start_score: float) -> list[dict]:
        """G Grow steps of I Improve steps from the weights of stage `start`; returns the step records."""
        current, records, best = start, [], (start_score, start)
        reference = None  # the trajectory's start, frozen, for improve_kl_coef; made when a step will run
        for g in range(1, self.config.grow_steps + 1):
            # step 1. grow: sample, score, write the grown set for people to inspect
            grow_key = layout.grow_stage(prefix, g)
            grown = self.stages(grow_key, lambda key: self.grow(grow_size, stage_seed(seed, key), key), after=current, trains=False)
            grown_set = self._read_grown(grown["grown_file"])
            if self.config.human_feedback:  # the hook that pauses the run for people's ratings
                grown_set = dataclasses.replace(grown_set, rewards=rewards_from_people(
                    self.run_dir.path / layout.ratings_file(grow_key), self.config.human_feedback, grown_set.examples,
                    grown_set.outputs, grown_set.sources, self.run_dir.path, self.policy.accelerator.is_main_process))
            masks = improve_masks(self.config.threshold, grown_set.rewards, grown_set.groups, self.config.improve_steps,
                                  self.higher_is_better, self.config.thresholds, self.config.threshold_decay,
                                  strata=[str(o) for o in grown_set.outputs] if self.config.threshold_per_output else None)
            grow_from, grow_policy = current, None  # the Grow policy, frozen for the KL guard when a step needs it
            for i, (mask, threshold) in enumerate(masks, start=1):
                # step 2. improve: filter at this step's threshold, fine-tune at a lower learning rate
                learning_rate = self.config.improve_learning_rate * self.config.lr_decay ** (i - 1)
                last = i == len(masks)
                # ReST-EM fine-tunes the start policy again on each Grow step's data (less overfitting)
                base = start if i == 1 and self.config.restart_from == "start" else current
                improve_key = layout.improve_stage(prefix, g, i)
                if self.run_dir.stage(improve_key) is None:  # only for a step that will run
                    grow_policy = grow_policy or self.guards.frozen_grow_policy(grow_from)
                    reference = reference or self._frozen_reference(start)
                record = self.stages(improve_key, lambda key: self.improve(
                    grown_set, mask, threshold, learning_rate, stage_seed(seed, key), key, last, grow_policy, reference),
                    after=base, trains=True)
                current = record["checkpoint"]
                records.append({"G": g, "I": i, **record})
                if record[self.selection_metric] > best[0]:
                    best = (record[self.selection_metric], current)
                stop = self._should_stop(records, start_score)
                # only after a step that ran: replaying finished steps on resume must not prune later ones
                if self.keep_checkpoints == "best" and self.stages.ran:
                    # a resumed run rebuilds the Grow policy from its checkpoint until its last Improve step
                    needed = {grow_from} if self.guards.kl_enabled() and not (last or stop) else set()
                    self.stages.prune(prefix, keep={best[1], current} | needed)
                if stop:
                    return self._finished(prefix, best[1], records)
            grow_policy = None  # its memory goes back before the next Grow step samples
        return self._finished(prefix, best[1], records)

    def _finished(self, prefix: str, best: str, records: list[dict]) -> list[dict]:
        """The trajectory's records, after deleting every checkpoint of it but the best: nothing resumes from
        the latest any more, and the report and `restlm evaluate` need only the best."""
        if self.keep_checkpoints == "best":
            self.stages.prune(prefix, keep={best})
        return records

    def grow(self, grow_size: int | None, seed: int, key: str) -> dict:
        """Draw inputs, sample K outputs each, score them with the original data; write the set."""
        start = time.perf_counter()
        rng = np.random.default_rng(seed)
        size = len(self.train_data) if grow_size is None else min(grow_size, len(self.train_data))
        drawn = sorted(rng.choice(len(self.train_data), size=size, replace=False).tolist())
        samples = self.policy.sample([self.train_data[i] for i in drawn], k=self.config.samples_per_input,
                                     temperature=self.config.temperature, greedy=self.config.sampling == "argmax",
                                     seed=seed, top_p=self.config.top_p)
        sampled_tokens = getattr(self.policy, "last_generated_tokens", None)  # generative policies count them
        generation = getattr(self.policy, "last_generation", {})  # and time them, engine by engine
        rows = []
        if self.config.original_data != "none":
            rows += [(i, gold_output(e), "original") for i, e in enumerate(self.train_data)]
        for index, outputs in zip(drawn, samples):
            rows += [(index, output, "grown") for output in dict.fromkeys(outputs)]  # identical samples count once
        examples, outputs = [self.train_data[i] for i, _, _ in rows], [o for _, o, _ in rows]
        rewards = self.reward(self.policy, examples, outputs)
        if rewards.shape != (len(rows),) or not np.isfinite(rewards).all():
            bad = int((~np.isfinite(rewards)).sum()) if rewards.shape == (len(rows),) else "?"
            raise NonFiniteError(f"stage '{key}': reward '{self.reward.name}' must give one finite score per output "
                                 f"({len(rows)} outputs, shape {rewards.shape}, {bad} not finite)")
        # BVMPO's reference is the policy that grew the data; kept in the file so a resume reuses it
        refs = self.policy.log_probs(examples, outputs) if LOSS_NEEDS[self.config.loss].reference else [None] * len(rows)
        guards = self.guards.grown_log_probs(examples, outputs, [s for _, _, s in rows], refs)
        path = self.run_dir.file(*layout.grown_file(key).parts)
        self.run_dir.write_jsonl(path, (self._grown_row(i, o, s, r, ref, g) for (i, o, s), r, ref, g
                                        in zip(rows, rewards, refs, guards)))
        grown_rewards = rewards[[s == "grown" for _, _, s in rows]]
        strings = [o for _, o, s in rows if s == "grown" and isinstance(o, str)]
        # the reward's direction, so `restlm inspect` can say which end of the file is best
        return {"grown_file": str(path.relative_to(self.run_dir.path)), "rows": len(rows), "grown": int(len(grown_rewards)),
                "reward": self.reward.name, "higher_is_better": self.reward.higher_is_better,
                "reward_mean": float(rewards.mean()),
                "grown_reward_mean": float(grown_rewards.mean()) if len(grown_rewards) else None,
                "distinct_samples": float(np.mean([len(set(outputs)) / len(outputs) for outputs in samples])),
                "distinct_2": distinct_n(strings, 2) if strings else None,
                "sampled_tokens": sampled_tokens, "sampled_tokens_per_s": generation.get("tokens_per_s"),
                "engine": generation.get("engine"), "engine_sync_s": generation.get("sync_s"),
                "wall_time_s": time.perf_counter() - start}

    def improve(self, grown: GrownSet, mask: np.ndarray, threshold: float, learning_rate: float, seed: int,
                key: str, last: bool, grow_policy: Policy | None = None, reference: Policy | None = None) -> dict:
        """Fine-tune on the kept rows (plus every original row when configured); evaluate.

        `grow_policy`: a frozen copy of the policy that grew the data, for the KL guard (None: no KL).
        `reference`: the trajectory's start, frozen, that `improve_kl_coef` anchors the loss to.
        """
        start = time.perf_counter()
        is_original = np.array(grown.sources) == "original"
        if self.config.max_kept_per_input is not None:
            mask = cap_per_input(mask & ~is_original, grown.rewards, grown.groups, self.config.max_kept_per_input,
                                 self.higher_is_better) | (mask & is_original)
        keep = mask | is_original if self.config.original_data == "all" else mask
        # BC clones the kept samples; GOLD and BVMPO also weight each by its reward in [0, 1]
        weights = grown.rewards if LOSS_NEEDS[self.config.loss].rewards_as_weights else np.ones(len(keep))
        items = [TrainItem(e, o, float(w), ref) for e, o, w, ref, k
                 in zip(grown.examples, grown.outputs, weights, grown.ref_log_probs, keep) if k]
        stats = train_policy(self.policy, items, self.train_config, learning_rate, self.config.improve_epochs, seed,
                             loss=self.config.loss, description=key, reference=reference,
                             kl_coef=self.config.improve_kl_coef)
        record = {"threshold": float(threshold), "kept": int(keep.sum()), "kept_grown": int((keep & ~is_original).sum()),
                  "kept_mean_reward": float(grown.rewards[keep].mean()) if keep.any() else None,
                  "lr": learning_rate, "train_steps": stats.steps, "train_loss": stats.mean_loss,
                  "train_examples_per_s": stats.examples_per_s, "train_dtype": stats.dtype,
                  **self.evaluate(self.policy)}
        record.update(self.guards.after_improve(grown, grow_policy, stage_seed(seed, "kl_to_grow_policy")))
        if last and self.record_train_nll:
            record["train_nll_file"] = self.write_train_nll(key)
        record["wall_time_s"] = time.perf_counter() - start
        return record

    def _frozen_reference(self, start: str) -> Policy | None:
        """The trajectory's start policy, frozen: the anchor of improve_kl_coef (None when it is off)."""
        if not self.config.improve_kl_coef:
            return None
        if self.stages.in_memory == start:
            return self.policy.frozen_copy()
        checkpoint = self.run_dir.checkpoint_dir(start)
        if not checkpoint.exists():
            raise RunDirError(f"{self.run_dir.path}: rest.improve_kl_coef needs the weights of stage {start!r} "
                              f"to resume, and {checkpoint} holds none: start the run over")
        return self.policy.frozen_copy(checkpoint)

    # ---------------------------------------------------------------- plumbing
    def write_train_nll(self, key: str) -> str:
        """Per-example NLL of the gold outputs of the training data (the reference's Figure 2)."""
        return write_train_nll(self.policy, self.train_data, self.run_dir, key)

    def _should_stop(self, records: list[dict], start_score: float) -> bool:
        """True after `early_stop_patience` Improve steps without a new best."""
        patience = self.config.early_stop_patience
        if patience is None:
            return False
        best, since = start_score, 0
        for record in records:
            score = record[self.selection_metric]
            best, since = (score, 0) if score > best else (best, since + 1)
        return since > 0 and since >= patience  # patience 0 and 1 both stop at the first step without a gain

    def _grown_row(self, index: int, output, source: str, reward: float, ref_log_prob, guard_log_prob) -> dict:
        example = self.train_data[index]
        row = {"index": index, "uid": example.uid, "source": source, "text": example.text,
               "text_pair": example.text_pair, "gold": gold_output(example), "output": output, "reward": float(reward)}
        if ref_log_prob is not None:
            row["ref_log_prob"] = float(ref_log_prob)
        if guard_log_prob is not None:
            row["guard_log_prob"] = guard_log_prob
        return row

    def _read_grown(self, relative: str) -> GrownSet:
        rows = read_jsonl(self.run_dir.path / relative)
        return GrownSet([self.train_data[r["index"]] for r in rows], [r["output"] for r in rows],
                        np.array([r["reward"] for r in rows]), [r["source"] for r in rows],
                        [str(r["index"]) for r in rows], [r.get("ref_log_prob") for r in rows],
                        [r.get("guard_log_prob") for r in rows])


def cap_per_input(mask: np.ndarray, rewards: np.ndarray, groups: list[str], cap: int, higher_is_better: bool) -> np.ndarray:
    """`mask` with at most `cap` rows kept per group: the best-rewarded ones (ties: the earlier row)."""
    order = np.argsort(-rewards if higher_is_better else rewards, kind="stable")
    capped, counts = np.zeros_like(mask), {}
    for row in order:
        if mask[row] and counts.get(groups[row], 0) < cap:
            capped[row] = True
            counts[groups[row]] = counts.get(groups[row], 0) + 1
    return capped


def write_train_nll(policy: Policy, data: list[Example], run: RunDir, key: str) -> str:
    """Write the per-example NLL of the gold outputs under `policy`; returns the file, run-relative."""
    nll = -policy.log_probs(data, [gold_output(e) for e in data])
    path = run.file("train_nll", f"{key.replace('/', '_')}.jsonl")
    run.write_jsonl(path, ({"uid": e.uid, "nll": float(v)} for e, v in zip(data, nll)))
    return str(path.relative_to(run.path))
