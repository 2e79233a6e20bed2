"""What every online RL loop here shares (PPO, GRPO, RLOO): the prompt order, the step loop with its
token budget, evaluations and the kept best step, the frozen reference, and the metrics file.

A subclass sets `section` (the config section its errors name), builds its optimiser and writes `step`
(one step on a batch of prompts, returning its metrics) and `log_line`.
"""
from __future__ import annotations

import copy
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import gather_object
from torch import nn

from restlm.atomic_files import write_jsonl
from restlm.data.examples import Example
from restlm.errors import ConfigError, RestlmError
from restlm.policies.lora import apply_lora, is_lora
from restlm.rewards.base import Reward


class OnlineRL(ABC):
    """The loop of an online RL method over a list of prompts (Example.text), against a reward.

    `reward`: a Reward, a name (as `build_reward` takes) or a function (examples, outputs) -> scores.
    A lower-is-better reward (NLL) is maximised as its negative. One process or several (`multi_process`
    methods: every process holds all of a step's samples and trains on its share of each minibatch, see
    `_minibatches`). The policy stays in eval mode (no dropout), so the old and new log-probs of a
    token differ only by the update. Under LoRA the reference is the base model (adapters off);
    else, when `needs_reference`, a frozen copy of the start.
    """

    section: str = ""  # the config section its errors name: "ppo", "grpo"
    kinds: tuple[str, ...] = ("classifier", "causal", "seq2seq")
    multi_process: bool = False  # whether `step` runs under accelerate's several processes

    def __init__(self, policy, reward: Reward | str | Callable, prompts: Sequence[Example], config,
                 needs_reference: bool = True):
        from restlm.rewards import build_reward

        self.config = cfg = config.validate()
        if not prompts:
            raise RestlmError(f"{self.section.upper()} needs at least one prompt")
        kind = getattr(policy, "kind", type(policy).__name__)
        if kind not in self.kinds:
            raise RestlmError(f"{self.section.upper()} trains {' or '.join(self.kinds)} policies, not {kind!r}")
        if policy.accelerator.num_processes > 1 and not self.multi_process:
            raise RestlmError(f"{self.section.upper()} runs on one process; launch it without accelerate's "
                              "multi-process mode")
        if cfg.lora is not None:
            if is_lora(policy.unwrapped):
                raise ConfigError(f"{self.section}.lora", f"the policy already has LoRA adapters; leave "
                                  f"{self.section}.lora unset")
            policy.model = policy.accelerator.prepare(apply_lora(policy.unwrapped, cfg.lora, policy.lora_task_type))
        policy.model.eval()
        self.processes, self.rank = policy.accelerator.num_processes, policy.accelerator.process_index
        if cfg.mini_batch_size % self.processes:
            raise ConfigError(f"{self.section}.mini_batch_size", f"must be a multiple of the {self.processes} "
                              f"processes, not {cfg.mini_batch_size}")
        self.policy, self.prompts = policy, list(prompts)
        self.reward = _maximised(build_reward(reward, key=f"{self.section}.reward"))
        torch.manual_seed(cfg.seed)
        keep_copy = needs_reference and not is_lora(policy.unwrapped)
        self.reference = copy.deepcopy(policy.unwrapped).requires_grad_(False) if keep_copy else None
        self.prompt_rng = np.random.default_rng([cfg.seed, 0])
        self.minibatch_rng = np.random.default_rng([cfg.seed, 1])
        self.sampled_tokens = 0  # over the whole run, for budgets comparable with ReST's Grow steps

    # ---- what a method writes
    @abstractmethod
    def step(self, prompts: Sequence[Example], step: int) -> dict:
        """One step on these prompts; returns its metrics (with 'charts/step')."""

    @abstractmethod
    def log_line(self, metrics: dict) -> str:
        """One line of a step's metrics for the console."""

    def modules(self) -> dict[str, nn.Module]:
        """What `keep_best` snapshots and restores."""
        return {"policy": self.policy.unwrapped}

    def autocast(self):
        """The context of every token pass (scoring, optimising): bf16 autocast when `dtype` resolves to bfloat16."""
        from restlm.precision import training_autocast

        return training_autocast(self.config.dtype, self.policy.accelerator.device)[0]

    def _sample(self, prompts: Sequence[Example], step: int):
        """This step's K samples per prompt (seeded by step), counted into `sampled_tokens`; (samples, tokens)."""
        cfg = self.config
        samples = self.policy.rollouts(prompts, cfg.samples_per_prompt, cfg.temperature, cfg.top_p,
                                       cfg.max_new_tokens, seed=cfg.seed * 100_003 + step)
        sampled = sum(len(o) for o in samples.output_ids)  # EOS included, as policy.sample counts
        self.sampled_tokens += sampled
        return samples, sampled

    def _rewards(self, samples) -> torch.Tensor:
        """The reward of each sample, [N] float32; one finite score per sample or RestlmError."""
        scores = torch.as_tensor(self.reward(self.policy, samples.examples, samples.outputs), dtype=torch.float32)
        if scores.shape != (len(samples.outputs),) or not torch.isfinite(scores).all():
            raise RestlmError(f"reward {self.reward.name!r} must give one finite score per sample")
        return scores

    def _minibatches(self, order: list[int]):
        """This process's contiguous share of each minibatch of `order` (all of it on one process); `order` is
        cut to a multiple of the process count first, so every process takes as many optimiser steps on as
        many samples and DDP's average of their gradients is the gradient of the whole minibatch."""
        order = order[: len(order) - len(order) % self.processes]
        for start in range(0, len(order), self.config.mini_batch_size):
            part = order[start : start + self.config.mini_batch_size]
            share = len(part) // self.processes
            yield part[self.rank * share : (self.rank + 1) * share]

    def _means(self, stats: dict[str, list[float]]) -> dict[str, float]:
        """The mean of each statistic over every minibatch share of every process."""
        if self.processes > 1:
            stats = {name: [v for part in gather_object([dict(stats)]) for v in part[name]] for name in stats}
        return {name: float(np.mean(values)) for name, values in stats.items()}

    def extra_state(self) -> dict:
        """What else a resumed run needs (PPO: its KL coefficient)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    # ---- the loop
    def train(self, metrics_path: str | Path | None = None, verbose: bool = True,
              evaluate: Callable[[object], dict] | None = None, state_path: str | Path | None = None) -> list[dict]:
        """`total_steps` steps (fewer once `max_sampled_tokens` are sampled); returns one metrics dict per
        step, also rewritten to `metrics_path` as JSONL after every step when given.

        evaluate(policy) -> {name: value}: run before the first step, every `eval_every` steps and after the
        last; its results are `self.evaluations` (one dict per evaluation, with `step` and `sampled_tokens`)
        and, for the steps evaluated, `eval/<name>` in the history. With `keep_best`, the policy ends as it
        was at the evaluation where that metric was highest.

        state_path: after every `eval_every` steps the whole state is written there (atomically), and a
        `train` that finds it continues from that step, ending as an uninterrupted run would; it is
        deleted when the run ends. Without eval_every nothing is written.
        """
        cfg = self.config
        history, order, first = [], [], 1
        self.evaluations, self._best, self.resumed_from = [], None, None
        if state_path is not None and Path(state_path).exists():
            history, order, first = self._load_state(Path(state_path))
            self.resumed_from = first - 1
        else:
            self._evaluate(evaluate, 0)
        for step in range(first, cfg.total_steps + 1):
            while len(order) < cfg.batch_size:  # every prompt once per pass, in a new order each pass
                order += self.prompt_rng.permutation(len(self.prompts)).tolist()
            rows, order = order[: cfg.batch_size], order[cfg.batch_size :]
            history.append(self.step([self.prompts[i] for i in rows], step))
            budget = cfg.max_sampled_tokens
            last = step == cfg.total_steps or (budget is not None and self.sampled_tokens >= budget)
            every = cfg.eval_every and step % cfg.eval_every == 0
            if evaluate is not None and (last or every):
                self._evaluate(evaluate, step)
                history[-1].update({f"eval/{k}": v for k, v in self.evaluations[-1].items()
                                    if k not in ("step", "sampled_tokens")})
            main = self.policy.accelerator.is_main_process
            if metrics_path is not None and main:
                write_jsonl(Path(metrics_path), history)
            if verbose and main:
                print(self.log_line(history[-1]), flush=True)
            if last:
                break
            if state_path is not None and every:
                self._save_state(Path(state_path), history, order, step)
        if self._best is not None and self._best["step"] != self.evaluations[-1]["step"]:
            for name, module in self.modules().items():
                module.load_state_dict(self._best[name])
        self.best_step = None if self._best is None else self._best["step"]
        self._best = None
        if state_path is not None:
            self.policy.accelerator.wait_for_everyone()  # every process has read it (a resume) before it goes
            if self.policy.accelerator.is_main_process:
                Path(state_path).unlink(missing_ok=True)
        return history

    def _save_state(self, path: Path, history: list, order: list, step: int) -> None:
        """Everything the next steps depend on, in one file written atomically."""
        state = {"step": step, "history": history, "order": order, "evaluations": self.evaluations,
                 "best": self._best, "sampled_tokens": self.sampled_tokens,
                 "modules": {name: module.state_dict() for name, module in self.modules().items()},
                 "optimizer": self.optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
                 "prompt_rng": self.prompt_rng.bit_generator.state,
                 "minibatch_rng": self.minibatch_rng.bit_generator.state, "extra": self.extra_state()}
        if self.policy.accelerator.is_main_process:  # every process holds the same state
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".partial")
            torch.save(state, partial)
            os.replace(partial, path)
        self.policy.accelerator.wait_for_everyone()

    def _load_state(self, path: Path) -> tuple[list, list, int]:
        state = torch.load(path, map_location="cpu", weights_only=False)
        for name, module in self.modules().items():
            module.load_state_dict(state["modules"][name])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        self.prompt_rng.bit_generator.state = state["prompt_rng"]
        self.minibatch_rng.bit_generator.state = state["minibatch_rng"]
        self.evaluations, self._best, self.sampled_tokens = state["evaluations"], state["best"], state["sampled_tokens"]
        self.load_extra_state(state["extra"])
        if self.policy.accelerator.is_main_process:
            print(f"{self.section}: resumed at step {state['step']} from {path}", flush=True)
        return state["history"], state["order"], state["step"] + 1

    def _evaluate(self, evaluate, step: int) -> None:
        """Evaluate the policy now; under keep_best, keep a CPU copy of the weights when they are the best yet."""
        if evaluate is None:
            return
        metrics = {"step": step, "sampled_tokens": self.sampled_tokens, **evaluate(self.policy)}
        self.policy.model.eval()  # an evaluation may leave the model in train mode
        self.evaluations.append(metrics)
        key = self.config.keep_best
        if key is None:
            return
        if key not in metrics:
            raise ConfigError(f"{self.section}.keep_best", f"evaluate() returned no {key!r} (it gave {sorted(metrics)})")
        if self._best is None or metrics[key] > self._best["value"]:
            self._best = {"step": step, "value": metrics[key],
                          **{name: _cpu_copy(module) for name, module in self.modules().items()}}

    @contextmanager
    def _reference(self):
        """The start policy's bare model: the frozen copy, or under LoRA the base with adapters off."""
        if self.reference is not None:
            yield self.reference
        else:
            with self.policy.unwrapped.disable_adapter():
                yield self.policy.unwrapped

    def save(self, path: str | Path) -> None:
        """The policy in HF format (LoRA merged, see policies/lora.py)."""
        self.policy.save(Path(path))


def _maximised(reward: Reward) -> Reward:
    """The reward itself, or for a lower-is-better one (NLL) its negative: every loop here maximises."""
    if reward.higher_is_better:
        return reward
    return Reward(f"-{reward.name}", lambda policy, examples, outputs: -reward(policy, examples, outputs), True, None)


def _cpu_copy(module: nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
