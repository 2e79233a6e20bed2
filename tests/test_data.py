"""Data readers: real MRPC from ../shared/data, and every bad input a user can give."""
from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

import restlm
from restlm.data import (
    data_root,
    load_classification_split,
    load_hub_glue,
    read_labelled,
    read_mrpc,
    resolve_data_path,
)
from restlm.data import glue, location
from restlm.errors import ConfigError, DataError, RestlmError


@pytest.fixture(scope="module")
def root() -> Path:
    return data_root()


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# ---- real MRPC ---------------------------------------------------------------------------

def test_mrpc_counts_and_first_row(root):
    train = read_mrpc(root / "mrpc", "train")
    dev = read_mrpc(root / "mrpc", "dev")
    assert (len(train), len(dev)) == (3668, 408)
    first = train[0]
    assert first.text == ('Amrozi accused his brother , whom he called " the witness " , '
                          "of deliberately distorting his evidence .")
    assert first.text_pair.startswith('Referring to him as only " the witness " , Amrozi')
    assert (first.label, first.uid) == (1, "702876-702977")
    assert train[1].label == 0


def test_mrpc_dev_label_balance(root):
    dev = read_mrpc(root / "mrpc", "dev")
    positive = sum(ex.label for ex in dev)
    assert positive == 279
    assert round(positive / len(dev), 3) == 0.684


def test_mrpc_test_split_is_unlabelled(root):
    test = read_mrpc(root / "mrpc", "test")
    assert len(test) == 1725
    assert all(ex.label is None for ex in test)


def test_mrpc_short_copy_is_caught(root, tmp_path):
    lines = (root / "mrpc" / "dev.tsv").read_text(encoding="utf-8-sig").split("\n")
    write(tmp_path, "dev.tsv", "\n".join(lines[:11]) + "\n")
    with pytest.raises(DataError, match="10 rows where GLUE's MRPC dev has 408"):
        read_mrpc(tmp_path, "dev")


def test_glue_folder_source_with_limit(root):
    cfg = {"source": "glue_folder", "path": "mrpc", "train_split": "train", "dev_split": "dev", "limit": 5}
    dev = load_classification_split(cfg, "dev", root)
    assert len(dev) == 5
    assert dev == read_mrpc(root / "mrpc", "dev")[:5]


# ---- where data lives --------------------------------------------------------------------

def test_data_root_found_beside_the_clone(monkeypatch, tmp_path):
    monkeypatch.delenv("RESTLM_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # nothing here: found from the package's own location
    assert (data_root() / "mrpc" / "train.tsv").is_file()


def test_data_root_walks_up_from_cwd(monkeypatch, tmp_path):
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "clone" / "src").mkdir(parents=True)
    monkeypatch.delenv("RESTLM_DATA", raising=False)
    monkeypatch.chdir(tmp_path / "clone" / "src")
    assert data_root() == (tmp_path / "shared" / "data").resolve()


def test_data_root_env_then_config(monkeypatch, tmp_path):
    (tmp_path / "from_env").mkdir()
    (tmp_path / "from_config").mkdir()
    monkeypatch.setenv("RESTLM_DATA", str(tmp_path / "from_env"))
    assert data_root() == (tmp_path / "from_env").resolve()
    assert data_root(str(tmp_path / "from_config")) == (tmp_path / "from_config").resolve()


def test_data_root_bad_values(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match=r"config key 'data.root': '.*nope' is not a folder"):
        data_root(str(tmp_path / "nope"))
    monkeypatch.setenv("RESTLM_DATA", str(tmp_path / "gone"))
    with pytest.raises(RestlmError, match="RESTLM_DATA='.*gone' is not a folder"):
        data_root()


def test_data_root_nothing_found(monkeypatch, tmp_path):
    monkeypatch.delenv("RESTLM_DATA", raising=False)
    monkeypatch.setattr(location, "_search_starts", lambda: [tmp_path])
    with pytest.raises(RestlmError) as caught:
        data_root()
    message = str(caught.value)
    assert "data.root" in message and "RESTLM_DATA" in message and "\n" not in message


def test_resolve_data_path(monkeypatch, tmp_path):
    write(tmp_path, "a.tsv", "x\n")
    monkeypatch.chdir(tmp_path)
    assert resolve_data_path("/abs/never.tsv", tmp_path) == Path("/abs/never.tsv")
    assert resolve_data_path("a.tsv", tmp_path / "elsewhere") == tmp_path / "a.tsv"  # from cwd
    with pytest.raises(DataError, match=r"^missing.tsv: not found \(looked under .*elsewhere and "):
        resolve_data_path("missing.tsv", tmp_path / "elsewhere")


# ---- well-formed files -------------------------------------------------------------------

def test_tsv_keeps_quotes_bom_and_nel(tmp_path):
    # a BOM like GLUE's files, `"` like MRPC, and NEL (\x85) like the IMDB sentiment file
    path = write(tmp_path, "p.tsv", '\ufeffs1\ts2\tlabel\nhe said " hi\tno\x85 way\t1\nb\tc\t0\n')
    examples = read_labelled(path, "s1", "s2")
    assert [(e.text, e.text_pair, e.label) for e in examples] == [
        ('he said " hi', "no\x85 way", 1), ("b", "c", 0)]
    assert [e.uid for e in examples] == ["p-2", "p-3"]


def test_csv_quoting_and_label_names(tmp_path):
    path = write(tmp_path, "p.csv", 'text,label\n"a, quoted\nrow",pos\nplain,neg\n')
    examples = read_labelled(path, "text", label_set=["neg", "pos"])
    assert [(e.text, e.label, e.meta["line"]) for e in examples] == [("a, quoted\nrow", 1, 2), ("plain", 0, 4)]


def test_file_source_jsonl_under_root(tmp_path):
    (tmp_path / "my").mkdir()
    rows = ['{"sentence1": "a", "sentence2": "b", "label": 1}', "",
            '{"sentence1": "c", "sentence2": "d", "label": 0}']
    write(tmp_path / "my", "train.jsonl", "\n".join(rows) + "\n")
    cfg = {"source": "file", "train": "my/train.jsonl", "dev": "my/dev.jsonl", "text_column": "sentence1",
           "text_pair_column": "sentence2", "label_column": "label", "label_set": [0, 1]}
    examples = load_classification_split(cfg, "train", tmp_path)
    assert [(e.text, e.text_pair, e.label, e.uid) for e in examples] == [("a", "b", 1, "train-1"),
                                                                       ("c", "d", 0, "train-3")]
    assert len(load_classification_split({**cfg, "limit": 1}, "train", tmp_path)) == 1


# ---- bad files: every message names the file and the line --------------------------------

@pytest.mark.parametrize("name, text, kwargs, expected", [
    ("bad.tsv", "s1\ts2\tlabel\na\tb\t1\na\tb\n", {}, r"bad.tsv:3: 2 fields where the header has 3"),
    ("bad.tsv", "s1\tlabel\na\t1\n", {}, r"bad.tsv:1: missing column 's2'"),
    ("bad.tsv", "s1\ts2\tlabel\na\tb\t1\na\tb\t2\n", {"label_set": [0, 1]},
     r"bad.tsv:3: label '2' in column 'label' is not in the label set \[0, 1\]"),
    ("bad.tsv", "s1\ts2\tlabel\na\tb\tyes\n", {}, r"bad.tsv:2: label 'yes' .* is not an integer"),
    ("bad.tsv", "s1\ts2\tlabel\na\t \t1\n", {}, r"bad.tsv:2: empty text in column 's2'"),
    ("empty.tsv", "", {}, r"empty.tsv:1: no data rows"),
    ("header.csv", "s1,s2,label\n", {}, r"header.csv:2: no data rows"),
    ("bad.jsonl", '{"s1": "a", "s2": "b", "label": 1}\n{"s1": "a", "s2": \n', {}, r"bad.jsonl:2: malformed JSON"),
    ("bad.jsonl", '{"s1": "a", "s2": "b", "label": 1}\n{"s1": "a", "label": 0}\n', {},
     r"bad.jsonl:2: missing column 's2'"),
    ("bad.jsonl", '[1, 2]\n', {}, r"bad.jsonl:1: expected a JSON object, found list"),
    ("bad.txt", "s1\n", {}, r"bad.txt: cannot tell the format from the suffix '.txt'"),
])
def test_bad_files(tmp_path, name, text, kwargs, expected):
    path = write(tmp_path, name, text)
    with pytest.raises(DataError, match=expected) as caught:
        read_labelled(path, "s1", "s2", **kwargs)
    assert str(caught.value).startswith(str(path))


def test_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin.tsv"
    path.write_bytes(b"s1\tlabel\nok\t1\ncaf\xe9\t0\n")
    with pytest.raises(DataError, match=r"latin.tsv:3: not UTF-8 text"):
        read_labelled(path, "s1")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"gone.tsv: cannot read: No such file"):
        read_labelled(tmp_path / "gone.tsv", "s1")


# ---- bad configs -------------------------------------------------------------------------

@pytest.mark.parametrize("cfg, split, expected", [
    ({"source": "kaggle"}, "train", r"config key 'data.source': unknown source 'kaggle'"),
    ({}, "train", r"config key 'data.source': unknown source None"),
    ({"source": "file", "train": "t.tsv", "texts_column": "s"}, "train",
     r"config key 'data.texts_column': not a key of data source 'file'"),
    ({"source": "file", "train": "t.tsv"}, "dev", r"config key 'data.dev': is required"),
    ({"source": "glue_folder", "path": "mrpc", "limit": 0}, "dev", r"config key 'data.limit'"),
    ({"source": "glue_folder", "path": "mrpc", "limit": "5"}, "dev", r"config key 'data.limit'"),
    ({"source": "file", "train": "t.tsv", "label_set": "01"}, "train", r"config key 'data.label_set'"),
    ({"source": "hub", "config": "imdb"}, "train", r"config key 'data.config': 'imdb' is not one of"),
])
def test_bad_configs(tmp_path, cfg, split, expected):
    write(tmp_path, "t.tsv", "text\tlabel\na\t1\n")
    with pytest.raises(ConfigError, match=expected):
        load_classification_split(cfg, split, tmp_path)


# ---- the hub -----------------------------------------------------------------------------

def test_hub_offline_is_one_line(monkeypatch, tmp_path):
    # a fresh process: datasets reads the offline flags once, when it is imported
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache, whatever this machine holds
    monkeypatch.setenv("PYTHONPATH", str(Path(restlm.__file__).parents[1]))
    code = ("from restlm.data import load_hub_glue\nfrom restlm.errors import RestlmError\n"
            "try:\n    load_hub_glue('mrpc', 'train')\nexcept RestlmError as e:\n    print(e)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("cannot load nyu-mll/glue/mrpc split 'train' (")
    assert "data.source 'glue_folder'" in lines[0]


def test_hub_without_network_fails_fast(monkeypatch):
    for flag in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(flag, raising=False)
    monkeypatch.setattr(glue, "hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(RestlmError, match=r"^cannot reach the Hugging Face hub for nyu-mll/glue/mrpc: "):
        load_hub_glue("mrpc", "train")


def test_hub_rows_become_examples(monkeypatch, tmp_path):
    rows = [{"sentence1": "a", "sentence2": "b", "label": 1, "idx": 0},
            {"sentence1": "c", "sentence2": "d", "label": -1, "idx": 7}]
    calls = []
    fake = types.SimpleNamespace(load_dataset=lambda *args, **kw: calls.append((args, kw)) or rows)
    monkeypatch.setitem(sys.modules, "datasets", fake)
    monkeypatch.setattr(glue, "hub_reachable", lambda timeout=3.0: True)
    examples = load_classification_split({"source": "hub", "name": "nyu-mll/glue", "config": "mrpc"}, "dev", tmp_path)
    assert calls == [(("nyu-mll/glue", "mrpc"), {"split": "validation"})]
    assert [(e.text, e.text_pair, e.label, e.uid) for e in examples] == [("a", "b", 1, "0"), ("c", "d", None, "7")]
