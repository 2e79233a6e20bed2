"""restlm: Reinforced Self-Training (ReST) and RLHF for small language models.

The public API:
    config = load_config("configs/mrpc_minilm.yaml", ["rest.grow_steps=2"])
    results = Experiment(config).run_all()            # the whole experiment, resumable
or, one level down, ReST itself on any policy and reward:
    ReST(policy=policy, reward="nll", train_data=train, evaluate=evaluate, config=config.rest).run(grow_size=100)
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
