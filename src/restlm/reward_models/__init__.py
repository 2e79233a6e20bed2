"""Learned reward models: Bradley-Terry reward models on preference pairs, sentiment classifiers.

  model.py          RewardModel: r(prompt, response) from an encoder or a causal backbone
  bradley_terry.py  the loss, the training loop, pairwise accuracy
  ensemble.py       RewardEnsemble: members' standardised rewards averaged, less a share of their spread
  probe.py          linear probes: the backbone frozen and cut, the head fitted by logistic regression
  probe_runs.py     a probe fitted, measured and saved; nested cross-validation of probes and their ensembles
  sentiment.py      sentiment classifiers (a reward one and a gold one) on the UCI sentences
  commands.py       `main_reward_model`, `main_sentiment_model`: the command lines
A saved model (or ensemble) becomes a policy's reward by `reward_model:PATH` or `sentiment:PATH`
(restlm.rewards.build_reward).
"""
from restlm.reward_models.bradley_terry import (
                                                RewardTrainConfig,
                                                bradley_terry_loss,
                                                pairwise_accuracy,
                                                train_reward_model,
)
from restlm.reward_models.model import RewardModel

__all__ = ["RewardModel", "RewardTrainConfig", "bradley_terry_loss", "pairwise_accuracy", "train_reward_model"]
