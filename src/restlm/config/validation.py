"""Checks on a built config that its types alone cannot express: choices, ranges, combinations."""
from __future__ import annotations

import dataclasses

from restlm.config.sections import ExperimentConfig
from restlm.errors import ConfigError


_CHOICES = {
    "data.source": ("glue_folder", "file", "hub"),
    "rest.sampling": ("argmax", "sample"),
    "rest.threshold": ("reference", "rising", "percentile"),
    "rest.original_data": ("filtered", "all", "none"),
    "rest.loss": ("bc", "gold", "bvmpo"),
    "rest.restart_from": ("previous", "start"),
    "rest.human_feedback": ("rate", "rank", None),
    "translation.heldout_metric": ("bleu", "chrf", None),
    "baselines.zero_shot.backend": ("local", "http", "none"),
    "run.keep_checkpoints": ("best", "all"),
    "run.checkpoint_dtype": ("auto", "float32", "bfloat16"),
    "generation.engine": ("auto", "hf", "torch", "ctranslate2"),
    "generation.dtype": ("auto", "float32", "bfloat16"),
    "train.dtype": ("auto", "float32", "bfloat16"),
    "generation.compute_type": ("auto", "int8", "int8_float32", "float32", "int8_float16", "int8_bfloat16",
                                "float16", "bfloat16"),
}


def validate(config: ExperimentConfig) -> None:
    """Check choices and ranges that types alone cannot express."""
    flat = _flatten(dataclasses.asdict(config))
    for key, choices in _CHOICES.items():
        if flat[key] not in choices:
            raise ConfigError(key, f"must be one of {', '.join(map(str, choices))}; got {flat[key]!r}")
    positive = ["train.epochs", "train.batch_size", "train.eval_batch_size", "rest.samples_per_input",
                "rest.improve_epochs", "run.seeds", "generation.batch_tokens"]
    for key in positive:
        if flat[key] is not None and flat[key] < 1:  # None: a default chosen elsewhere (generation.batch_tokens)
            raise ConfigError(key, f"must be at least 1; got {flat[key]}")
    if config.model.max_length < MIN_LENGTH:  # the model's own limit is checked when it is loaded
        raise ConfigError("model.max_length", f"must be at least {MIN_LENGTH} (special tokens and some text); "
                          f"got {config.model.max_length}")
    # (NaN and inf never get this far: loading refuses any non-finite float)
    for key in ["train.learning_rate", "rest.improve_learning_rate", "baselines.zero_shot.timeout_s"]:
        if flat[key] <= 0:
            raise ConfigError(key, f"must be above 0; got {flat[key]}")
    if config.train.weight_decay < 0:
        raise ConfigError("train.weight_decay", f"must be 0 or more; got {config.train.weight_decay}")
    for key in ["train.warmup_ratio", "baselines.zero_shot.max_unparsed"]:
        if not 0 <= flat[key] <= 1:
            raise ConfigError(key, f"must be in [0, 1]; got {flat[key]}")
    _check_thresholds(config.rest.threshold, config.rest.thresholds)
    fraction = config.data.validation_fraction
    if fraction is not None and not 0 < fraction < 1:
        raise ConfigError("data.validation_fraction", f"must be in (0, 1), or null; got {fraction}")
    config.ppo.validate()
    config.grpo.validate()
    config.dpo.validate()
    from restlm.methods import METHODS  # here: the methods import the config package
    from restlm.plugins import import_plugins

    from restlm.tasks import TASKS

    import_plugins(config.plugins)  # before the names are checked: a plugin may register them
    if config.task not in TASKS:
        raise ConfigError("task", f"must be one of {', '.join(TASKS)}; got {config.task!r}")
    if config.method not in METHODS:
        raise ConfigError("method", f"must be one of {', '.join(METHODS)}; got {config.method!r}")
    from restlm.methods.variants import variant_config

    for name in config.variants:
        variant_config(config, name)  # each variant's values are a valid config of its method
    for key in ["rest.grow_steps", "rest.improve_steps"]:
        if flat[key] < 0:
            raise ConfigError(key, f"must be 0 or more; got {flat[key]}")
    if not config.rest.grow_sizes:
        raise ConfigError("rest.grow_sizes", "needs at least one grow size (an int, or null for all inputs)")
    for i, size in enumerate(config.rest.grow_sizes):
        if size is not None and size < 1:
            raise ConfigError(f"rest.grow_sizes[{i}]", f"must be at least 1, or null for all inputs; got {size}")
    if config.rest.temperature <= 0:
        raise ConfigError("rest.temperature", f"must be above 0 (use rest.sampling=argmax for greedy); got {config.rest.temperature}")
    if config.train.patience is not None and (isinstance(config.train.patience, bool) or config.train.patience < 1):
        raise ConfigError("train.patience", f"must be 1 or more, or null; got {config.train.patience}")
    if config.rest.early_stop_patience is not None and config.rest.early_stop_patience < 0:
        raise ConfigError("rest.early_stop_patience", f"must be 0 or more, or null; got {config.rest.early_stop_patience}")
    if not 0 < config.rest.lr_decay <= 1:
        raise ConfigError("rest.lr_decay", f"must be in (0, 1]; got {config.rest.lr_decay}")
    if not 0 < config.rest.threshold_decay < 1:
        raise ConfigError("rest.threshold_decay", f"must be in (0, 1); got {config.rest.threshold_decay}")
    if config.rest.threshold == "rising" and not config.rest.normalise_reward and config.rest.reward == "nll":
        raise ConfigError("rest.threshold", "'rising' thresholds need rewards in [0, 1]: set rest.normalise_reward=true")
    if config.rest.loss != "bc" and not config.rest.normalise_reward and config.rest.reward == "nll":
        raise ConfigError("rest.loss", f"'{config.rest.loss}' weights samples by rewards in [0, 1]: set rest.normalise_reward=true")
    if not 0 < config.rest.top_p <= 1:
        raise ConfigError("rest.top_p", f"must be in (0, 1]; got {config.rest.top_p}")
    if config.rest.improve_kl_coef < 0:
        raise ConfigError("rest.improve_kl_coef", f"must be 0 or more; got {config.rest.improve_kl_coef}")
    if config.rest.guard_samples < 0:
        raise ConfigError("rest.guard_samples", f"must be 0 or more; got {config.rest.guard_samples}")
    for key in ["rest.max_kept_per_input", "model.lora_rank", "translation.max_new_tokens", "prompts.max_new_tokens",
                "prompts.limit", "prompts.dev_limit", "prompts.test_limit", "sentiment.classifier_limit",
                "sentiment.prompts", "sentiment.dev_prompts", "sentiment.heldout_prompts", "sentiment.max_new_tokens"]:
        if flat[key] is not None and flat[key] < 1:
            raise ConfigError(key, f"must be at least 1; got {flat[key]}")
    if config.task == "prompts" and not (config.prompts.train and config.prompts.dev):
        raise ConfigError("prompts.train", "task 'prompts' needs prompts.train and prompts.dev (files, or split names of prompts.hub)")
    if "{text}" not in config.prompts.prompt:
        raise ConfigError("prompts.prompt", f"must contain {{text}}: {config.prompts.prompt!r}")
    if config.data.source == "file" and not (config.data.train and config.data.dev):
        raise ConfigError("data.train", "data.source 'file' needs data.train and data.dev")
    _check_arithmetic(config.arithmetic)


MIN_LENGTH = 8


def _check_arithmetic(cfg) -> None:
    """The `arithmetic` section: known levels, sizes and token limit of at least 1, a share in [0, 1]."""
    from restlm.tasks.arithmetic import LEVELS  # here: the tasks import the config package

    for key in ["train_size", "dev_size", "test_size", "max_new_tokens"]:
        if getattr(cfg, key) < 1:
            raise ConfigError(f"arithmetic.{key}", f"must be at least 1; got {getattr(cfg, key)}")
    if not cfg.levels:
        raise ConfigError("arithmetic.levels", f"needs at least one level ({', '.join(map(str, LEVELS))})")
    for i, level in enumerate(cfg.levels):
        if level not in LEVELS:
            raise ConfigError(f"arithmetic.levels[{i}]", f"unknown level {level}: levels are {', '.join(map(str, LEVELS))}")
    if not 0 <= cfg.word_problems <= 1:
        raise ConfigError("arithmetic.word_problems", f"must be in [0, 1]; got {cfg.word_problems}")
    if "{text}" not in cfg.prompt:
        raise ConfigError("arithmetic.prompt", f"must contain {{text}}: {cfg.prompt!r}")


def _check_thresholds(kind: str, thresholds: list[float]) -> None:
    """'rising' takes normalised rewards in [0, 1], 'percentile' percentiles in [0, 100]; both need one at least."""
    if kind not in ("rising", "percentile"):
        return
    if not thresholds:
        raise ConfigError("rest.thresholds", f"'{kind}' needs at least one threshold")
    high = 1 if kind == "rising" else 100
    for i, value in enumerate(thresholds):
        if not 0 <= value <= high:
            raise ConfigError(f"rest.thresholds[{i}]", f"a '{kind}' threshold must be in [0, {high}]; got {value}")


def _flatten(values: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat
