"""restlm: Reinforced Self-Training (ReST) and RLHF for small language models.

The public API:
    config = load_config("configs/mrpc_minilm.yaml", ["rest.grow_steps=2"])
    results = Experiment(config).run_all()            # the whole experiment, resumable
or, one level down, ReST itself on any policy and reward:
    ReST(policy=policy, reward="nll", train_data=train, evaluate=evaluate, config=config.rest).run(grow_size=100)

Where things are:
    algorithms   rest.py (Grow, filter, Improve; its hooks rest_guards.py, human_feedback.py),
                 thresholds.py, losses.py (BC, GOLD, BVMPO), ppo/,
                 sft.py and dpo.py (through TRL, trl_runs.py), training.py (the one supervised loop)
    methods/     a method on a task: sft, rest, rest_em, ppo, dpo, each one file registering itself
    tasks/       classification, translation, prompts (yours), sentiment: data, policy, metrics, held-out gold
    compare/     `restlm compare`: the runner, carry, summary (bootstrap intervals) and its report
    policies/    classifier, causal and seq2seq policies (sampling, log-probs, collation); models.py loads them
    rewards/     the reward spec language (chrf, reward_model:PATH, module:function, weighted:...)
    reward_models/  Bradley-Terry reward models, ensembles, probes, sentiment classifiers
    runs         runs.py (run directory, lock, stages), atomic_files.py, run_layout.py (every stage key), experiment.py
    reports      report/ (report.md/html of a run), results.py, inspect_run.py, stats.py
    config/      every setting: one dataclass per section, loading, validation, ranges
    data/        readers of every input format, one-line errors naming file and line
    presets/     what each script of benchmarks/ runs and summarises (the scripts are thin front-ends)
    plugins.py   the config's `plugins`: the user's own task and method modules
"""

__version__ = "0.1.0"

from restlm.config import ExperimentConfig, load_config  # noqa: E402
from restlm.errors import RestlmError  # noqa: E402


def __getattr__(name):
    # heavy imports (torch, transformers) only when asked for
    if name == "Experiment":
        from restlm.experiment import Experiment

        return Experiment
    if name == "ReST":
        from restlm.rest import ReST

        return ReST
    if name == "ClassifierPolicy":
        from restlm.policies.classifier import ClassifierPolicy

        return ClassifierPolicy
    if name == "build_reward":
        from restlm.rewards import build_reward

        return build_reward
    raise AttributeError(name)


__all__ = ["ClassifierPolicy", "Experiment", "ExperimentConfig", "ReST", "RestlmError", "build_reward", "load_config"]
