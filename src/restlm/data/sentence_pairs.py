"""Classification data (sentence pairs or single sentences) chosen by a plain data config.

Three sources, picked by `source`:
  glue_folder  {"path": "mrpc", "train_split": "train", "dev_split": "dev"}   MRPC in GLUE form
  file         {"train": "a.jsonl", "dev": "b.tsv", "text_column": ..., "text_pair_column": ...,
                "label_column": ..., "label_set": [...], "format": ...}       any labelled file
  hub          {"name": "nyu-mll/glue", "config": "mrpc"}                     needs the network
Every source also takes `limit` (keep the first n rows) and `root` (read by data_root).
"""
from __future__ import annotations

from pathlib import Path

from restlm.data.examples import Example
from restlm.data.glue import HUB_GLUE, load_hub_glue, read_mrpc
from restlm.data.location import resolve_data_path
from restlm.data.tabular import read_labelled
from restlm.errors import ConfigError

ROLES = ("train", "dev", "test")
COMMON_KEYS = {"source", "root", "limit"}
SOURCE_KEYS = {
    "glue_folder": {"path", "train_split", "dev_split", "test_split"},
    "file": {*ROLES, "text_column", "text_pair_column", "label_column", "label_set", "format"},
    "hub": {"name", "config", "train_split", "dev_split", "test_split"},
}
# split names by role where the config gives none; the hub calls dev "validation"
DEFAULT_SPLITS = {
    "glue_folder": {"train": "train", "dev": "dev", "test": "test"},
    "hub": {"train": "train", "dev": "validation", "test": "test"},
}


def load_classification_split(cfg: dict, split: str, root: Path | None) -> list[Example]:
    """Read one split ("train", "dev" or "test") of the classification data that `cfg` names.

    Relative paths are looked up under `root` (see data_root) and the current directory.
    Returns the Examples, the first `cfg["limit"]` only when a limit is set. Raises
    ConfigError for an unknown source or key, a bad limit or a split with no file.
    """
    if split not in ROLES:
        raise ValueError(f"split must be one of {ROLES}, not {split!r}")
    source = cfg.get("source")
    if source not in SOURCE_KEYS:
        raise ConfigError("data.source", f"unknown source {source!r}: use one of {', '.join(SOURCE_KEYS)}")
    # keys set to None are fine: a config dataclass passes every field it has
    unknown = sorted(k for k, v in cfg.items() if v is not None and k not in COMMON_KEYS | SOURCE_KEYS[source])
    if unknown:
        raise ConfigError(f"data.{unknown[0]}", f"not a key of data source '{source}'")
    limit = _limit(cfg.get("limit"))
    if source == "file":
        examples = _from_file(cfg, split, root)
    else:
        name = cfg.get(f"{split}_split") or DEFAULT_SPLITS[source][split]
        if source == "glue_folder":
            examples = read_mrpc(resolve_data_path(_required(cfg, "path"), root), name)
        else:
            examples = load_hub_glue(cfg.get("config") or "mrpc", name, cfg.get("name") or HUB_GLUE)
    return examples[:limit] if limit is not None else examples


def _from_file(cfg: dict, split: str, root: Path | None) -> list[Example]:
    path = resolve_data_path(_required(cfg, split), root)
    if not isinstance(cfg.get("label_set") or [], (list, tuple)):
        raise ConfigError("data.label_set", f"must be a list of labels, not {cfg['label_set']!r}")
    return read_labelled(
        path,
        text_column=cfg.get("text_column") or "text",
        text_pair_column=cfg.get("text_pair_column"),
        label_column=cfg.get("label_column") or "label",
        label_set=cfg.get("label_set"),
        format=cfg.get("format"),
    )


def _required(cfg: dict, key: str) -> str:
    value = cfg.get(key)
    if not value:
        raise ConfigError(f"data.{key}", f"is required for data source '{cfg['source']}'")
    return value


def _limit(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError("data.limit", f"must be a whole number of rows, 1 or more, not {value!r}")
    return value
