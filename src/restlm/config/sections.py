"""Experiment configuration: dataclasses, read from a JSON/YAML file plus `key=value` overrides.

Every unknown key and every wrong type is a `ConfigError` naming the dotted key, so that a
typo in a config file stops the run before any work is done.
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from restlm.errors import ConfigError


@dataclass
class DataConfig:
    source: str = "glue_folder"
    """where examples come from: 'glue_folder' (GLUE-form TSVs), 'file' (tsv/csv/jsonl) or 'hub'"""
    root: str | None = None
    """the data folder; default: $RESTLM_DATA, else a shared/data folder above the working dir"""
    path: str = "mrpc"
    """for 'glue_folder': the folder under root"""
    train_split: str = "train"
    """name of the training split"""
    dev_split: str = "dev"
    """name of the held-out split used for selection and the report"""
    train: str | None = None
    """for 'file': the training file"""
    dev: str | None = None
    """for 'file': the held-out file"""
    text_column: str = "sentence1"
    """for 'file': the column holding the (first) sentence"""
    text_pair_column: str | None = "sentence2"
    """for 'file': the column holding the second sentence; None for single sentences"""
    label_column: str = "label"
    """for 'file': the column holding the label"""
    label_set: list[str | int] | None = None
    """for 'file': labels as written in the file, in class-index order; None for integer labels"""
    name: str = "nyu-mll/glue"
    """for 'hub': the dataset id"""
    config: str | None = "mrpc"
    """for 'hub': the dataset config"""
    limit: int | None = None
    """keep only the first `limit` training examples (fast runs)"""
    dev_limit: int | None = None
    """keep only the first `dev_limit` held-out examples (fast runs)"""


@dataclass
class ModelConfig:
    name: str = "minilm"
    """short name ('minilm', 'smollm2'), Hugging Face id or local path"""
    num_labels: int = 2
    """number of classes of a classifier policy"""
    max_length: int = 128
    """token limit of an input"""
    lora_rank: int | None = None
    """train LoRA adapters of this rank (peft) instead of every weight; merged on save. None: full fine-tuning"""


@dataclass
class TrainConfig:
    learning_rate: float = 5e-5
    """learning rate of supervised fine-tuning (G0I0)"""
    epochs: int = 3
    """epochs of supervised fine-tuning (G0I0)"""
    batch_size: int = 32
    """global batch size (split across processes)"""
    weight_decay: float = 0.01
    """AdamW weight decay"""
    warmup_ratio: float = 0.1
    """fraction of steps with linear warm-up"""
    eval_batch_size: int = 128
    """batch size of inference (evaluation, Grow, rewards)"""


@dataclass
class RestConfig:
    grow_steps: int = 1
    """G: number of Grow steps"""
    improve_steps: int = 3
    """I: Improve steps per Grow step"""
    grow_sizes: list[int | None] = field(default_factory=lambda: [100])
    """N: inputs drawn from the training set per Grow step, one trajectory per value (None = all)"""
    samples_per_input: int = 1
    """K: outputs sampled per drawn input"""
    sampling: str = "argmax"
    """'argmax' (the reference) or 'sample' (labels drawn from the softmax at `temperature`)"""
    temperature: float = 1.0
    """softmax temperature when sampling"""
    top_p: float = 1.0
    """nucleus of generative sampling: draw from the smallest token set holding this probability"""
    reward: str = "nll"
    """'nll' (the reference; lower is better), 'correct', 'model:<path>' or 'module:function'"""
    normalise_reward: bool = False
    """map rewards to [0, 1], higher is better (nll -> probability of the label)"""
    threshold: str = "reference"
    """'reference' (mean, then strictly tighter), 'rising' (the `thresholds` list) or 'percentile'"""
    thresholds: list[float] = field(default_factory=lambda: [0.0, 0.7, 0.8, 0.9, 0.95, 0.99])
    """for 'rising': thresholds on normalised rewards; for 'percentile': per-input percentiles"""
    threshold_decay: float = 0.5
    """for 'reference': each Improve step's threshold moves this factor towards the best reward"""
    threshold_per_output: bool = False
    """apply the schedule per output value (per label: class-balanced), so filtering keeps the label mix"""
    original_data: str = "filtered"
    """original training data in the Improve mix: 'filtered' (with the grown data, the reference), 'all', 'none'"""
    improve_learning_rate: float = 2e-5
    """learning rate of the first Improve step of a Grow step"""
    lr_decay: float = 0.5
    """each following Improve step multiplies the learning rate by this"""
    improve_epochs: int = 1
    """epochs per Improve step"""
    loss: str = "bc"
    """offline loss of the Improve step: 'bc' (default), 'gold' or 'bvmpo' (these two weight by the [0, 1] reward)"""
    early_stop_patience: int | None = None
    """stop a trajectory after this many Improve steps without a better selection metric"""
    binary_reward_threshold: float | None = None
    """ReST-EM: the reward becomes 1 at or above this value (after normalisation), else 0"""
    max_kept_per_input: int | None = None
    """ReST-EM: keep at most this many grown samples per input (its best by reward)"""
    restart_from: str = "previous"
    """each Grow step's Improve steps start from the 'previous' policy (ReST) or the trajectory's 'start' (ReST-EM)"""
    human_feedback: str | None = None
    """'rate' or 'rank': after each Grow step write its samples to a file for people to rate and stop;
    `restlm run --resume` then reads the ratings back as the reward of the Improve steps"""
    guard_samples: int = 64
    """grown samples on which each Improve step logs their log-prob gain since Grow and token entropy (0: off)"""
    preset: str | None = None
    """'rest_em' (Singh et al. 2023): binary reward, restart each Grow step, a cap per input, one Improve step"""


@dataclass
class TranslationConfig:
    source_lang: str = "de"
    """language of the source files (file suffix)"""
    target_lang: str = "en"
    """language of the reference files (file suffix)"""
    test_splits: list[str] = field(default_factory=lambda: ["test_2016_flickr"])
    """Multi30k splits scored at every step for the report (never used for selection)"""
    test_limit: int | None = None
    """score only the first `test_limit` sentences of each test split (fast runs)"""
    out_of_domain: bool = True
    """also score IWSLT14 de-en valid (TED talks), an out-of-domain set"""
    out_of_domain_limit: int | None = None
    """score only the first sentences of the out-of-domain set"""
    system_prompt: str | None = "Translate the user's German text into English. Reply with the translation only."
    """the chat template's system turn (None: the template's own default)"""
    prompt: str = "{text}"
    """the user turn, with {text} the source sentence"""
    max_new_tokens: int = 64
    """token limit of a sampled or decoded translation"""
    heldout_metric: str | None = None
    """the metric the reward does not see, shown beside it: 'bleu' or 'chrf' (None: the other one of the reward)"""


@dataclass
class ZeroShotConfig:
    backend: str = "local"
    """'local' (a causal LM through transformers), 'http' (OpenAI-compatible endpoint) or 'none'"""
    model: str = "smollm2"
    """the causal LM (short name, HF id or path) or the endpoint's model name"""
    url: str | None = None
    """for 'http': the endpoint base URL"""
    api_key_env: str = "OPENAI_API_KEY"
    """for 'http': the environment variable holding the key"""
    prompt: str = (
        "Are the following two sentences paraphrases of each other? Sentence 1: {sentence1} "
        "Sentence 2: {sentence2}. Answer with 'Yes' or 'No'."
    )
    """the prompt, with {sentence1} and {sentence2}"""


@dataclass
class BaselinesConfig:
    zero_shot: ZeroShotConfig = field(default_factory=ZeroShotConfig)
    """the zero-shot LLM row of Table 1"""
    untrained_head: bool = True
    """evaluate the pretrained encoder with its new, untrained head"""


@dataclass
class RunConfig:
    seeds: int = 1
    """number of seeds (0 .. seeds-1); every cell runs once per seed"""
    output_dir: str = "runs/mrpc_minilm"
    """the run directory"""
    keep_checkpoints: str = "best"
    """'best' (best per trajectory + what resume needs) or 'all'"""
    histograms: bool = True
    """compute Figure 2's per-example training NLL at the fine-tuned and end-of-Grow stages"""
    tensorboard: bool = True
    """write TensorBoard logs under the run directory"""


@dataclass
class ExperimentConfig:
    task: str = "classification"
    """'classification' (sentence (pair) labels, e.g. MRPC) or 'translation' (Multi30k with a generative policy)"""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    rest: RestConfig = field(default_factory=RestConfig)
    translation: TranslationConfig = field(default_factory=TranslationConfig)
    baselines: BaselinesConfig = field(default_factory=BaselinesConfig)
    run: RunConfig = field(default_factory=RunConfig)


# ---------------------------------------------------------------- building from dicts


def _check_type(key: str, value, annotation):
    """Return `value` converted to `annotation`, or raise ConfigError naming `key`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _check_type(key, value, option)
            except ConfigError as error:
                errors.append(error)
        raise errors[0]
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(key, f"expected a list, got {type(value).__name__} {value!r}")
        (inner,) = typing.get_args(annotation)
        return [_check_type(f"{key}[{i}]", v, inner) for i, v in enumerate(value)]
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is float and isinstance(value, str):
        try:  # YAML 1.1 reads 5e-5 (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if annotation is type(None):
        if value is None:
            return None
        raise ConfigError(key, f"expected null, got {value!r}")
    if not isinstance(value, annotation) or (annotation is int and isinstance(value, bool)):
        raise ConfigError(key, f"expected {annotation.__name__}, got {type(value).__name__} {value!r}")
    return value


def from_dict(cls, values: dict, prefix: str = ""):
    """Build dataclass `cls` from a nested dict; unknown keys and wrong types raise ConfigError."""
    if not isinstance(values, dict):
        raise ConfigError(prefix.rstrip(".") or "<root>", f"expected a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in names:
            raise ConfigError(prefix + key, f"unknown key (known: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = from_dict(hint, value, prefix + name + ".")
        else:
            kwargs[name] = _check_type(prefix + name, value, hint)
    return cls(**kwargs)


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def _parse_override(text: str) -> tuple[list[str], object]:
    if "=" not in text:
        raise ConfigError(text, "an override must look like key.sub=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(values: dict, overrides: list[str]) -> dict:
    """Set dotted `key=value` overrides (values parsed as YAML) into a nested dict, in place."""
    for text in overrides:
        path, value = _parse_override(text)
        node = values
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(".".join(path), f"'{part}' is not a section")
        node[path[-1]] = value
    return values


def read_config_file(path: str | Path) -> dict:
    """Read a JSON or YAML config file into a dict; a malformed file raises ConfigError."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(str(path), f"cannot read config file: {error.strerror}") from None
    try:
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        line = getattr(error, "lineno", None) or getattr(getattr(error, "problem_mark", None), "line", -1) + 1
        raise ConfigError(f"{path}:{line}", f"malformed config file: {str(error).splitlines()[0]}") from None
    return values or {}


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """The experiment config from an optional file plus `key=value` overrides, validated."""
    values = read_config_file(path) if path else {}
    apply_overrides(values, overrides or [])
    if isinstance(values, dict) and isinstance(values.get("rest"), dict) and values["rest"].get("preset") is not None:
        # the preset replaces the file's rest keys (a config written for ReST must not half-apply
        # to ReST-EM); --set still wins over the preset
        values = apply_overrides(apply_preset(values), overrides or [])
    config = from_dict(ExperimentConfig, values)
    validate(config)
    return config


# A preset sets rest.* keys over the config file's; --set overrides win over the preset.
PRESETS = {
    "rest_em": {  # Singh et al. 2023: binary reward, restart from the start each Grow step, cap per input
        "binary_reward_threshold": 0.5, "max_kept_per_input": 10, "restart_from": "start",
        "improve_steps": 1, "threshold": "rising", "thresholds": [0.5], "normalise_reward": True,
        "original_data": "none",
    },
}


def apply_preset(values: dict) -> dict:
    """`values` with the rest.preset's keys set over the rest section's own; unknown presets raise."""
    rest = values["rest"]
    preset = rest["preset"]
    if preset not in PRESETS:
        raise ConfigError("rest.preset", f"must be one of {', '.join(PRESETS)}; got {preset!r}")
    return {**values, "rest": {**rest, **PRESETS[preset]}}


_CHOICES = {
    "task": ("classification", "translation"),
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
}


def validate(config: ExperimentConfig) -> None:
    """Check choices and ranges that types alone cannot express."""
    flat = _flatten(to_dict(config))
    for key, choices in _CHOICES.items():
        if flat[key] not in choices:
            raise ConfigError(key, f"must be one of {', '.join(map(str, choices))}; got {flat[key]!r}")
    positive = ["train.epochs", "train.batch_size", "train.eval_batch_size", "rest.samples_per_input",
                "rest.improve_epochs", "run.seeds", "model.max_length"]
    for key in positive:
        if flat[key] < 1:
            raise ConfigError(key, f"must be at least 1; got {flat[key]}")
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
    if config.rest.guard_samples < 0:
        raise ConfigError("rest.guard_samples", f"must be 0 or more; got {config.rest.guard_samples}")
    for key in ["rest.max_kept_per_input", "model.lora_rank", "translation.max_new_tokens"]:
        if flat[key] is not None and flat[key] < 1:
            raise ConfigError(key, f"must be at least 1; got {flat[key]}")
    if config.data.source == "file" and not (config.data.train and config.data.dev):
        raise ConfigError("data.train", "data.source 'file' needs data.train and data.dev")


def _flatten(values: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat
