"""Experiment configuration: dataclasses, read from a JSON/YAML file plus `key=value` overrides.

`sections.py` holds the dataclasses (every key with its doc), `loading.py` builds them from a file,
`--set` overrides and presets, `validation.py` checks what types cannot. Import from here.
"""
from restlm.config.loading import (PRESETS, apply_overrides, apply_preset, from_dict, keep_recorded_defaults,
                                   load_config, read_config_file, recorded_config, to_dict)
from restlm.config.sections import (BaselinesConfig, DataConfig, ExperimentConfig, GenerationConfig, ModelConfig,
                                    PromptsConfig, RestConfig, RunConfig, SentimentConfig, TrainConfig,
                                    TranslationConfig, ZeroShotConfig)
from restlm.config.validation import validate

__all__ = [
    "BaselinesConfig", "DataConfig", "ExperimentConfig", "GenerationConfig", "ModelConfig", "PromptsConfig", "RestConfig", "RunConfig",
    "SentimentConfig", "TrainConfig", "TranslationConfig", "ZeroShotConfig",
    "PRESETS", "apply_overrides", "apply_preset", "from_dict", "keep_recorded_defaults", "load_config", "read_config_file", "recorded_config",
    "to_dict", "validate",
]
