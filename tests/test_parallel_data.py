"""Parallel text readers on the real Multi30k and IWSLT14 files (counts, first lines) and on bad
files: different line counts, an empty line, a file that is not UTF-8."""
from __future__ import annotations

import pytest

from restlm.data import data_root
from restlm.data.parallel import load_iwslt14_valid, load_multi30k, read_parallel
from restlm.errors import DataError


@pytest.fixture(scope="module")
def root():
    return data_root()


@pytest.mark.parametrize("split, count", [("train", 29000), ("val", 1014), ("test_2016_flickr", 1000)])
def test_multi30k_counts(root, split, count):
    examples = load_multi30k(root, split)
    assert len(examples) == count
    assert examples[0].uid == f"{split}:1" and examples[-1].uid == f"{split}:{count}"
    assert all(e.text and e.target for e in examples)


def test_multi30k_first_lines(root):
    first = load_multi30k(root, "train", limit=2)
    assert len(first) == 2
    assert first[0].text == "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche."
    assert first[0].target == "Two young, White males are outside near many bushes."
    assert first[0].meta == {"line": 1}
    reverse = load_multi30k(root, "val", source="en", target="de", limit=1)[0]
    assert reverse.text == "A group of men are loading cotton onto a truck"


def test_iwslt14_valid(root):
    examples = load_iwslt14_valid(root)
    assert len(examples) == 7283
    assert examples[0].text == "es ist diese pyramide ."
    assert examples[0].target == "it &apos;s that pyramid ."
    assert examples[0].uid == "valid:1"
    assert load_iwslt14_valid(root, limit=1, unescape=True)[0].target == "it 's that pyramid ."


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_reader_splits_on_newline_only(tmp_path):
    # NEL (U+0085) and U+2028 are line breaks to str.splitlines, not to these files
    src = write(tmp_path / "a.de", "eins\u0085zwei\ndrei\n")
    tgt = write(tmp_path / "a.en", "one\u2028two\nthree")  # no final newline: fine
    examples = read_parallel(src, tgt)
    assert [(e.text, e.target, e.uid) for e in examples] == [
        ("eins\u0085zwei", "one\u2028two", "a:1"), ("drei", "three", "a:2")]
    assert len(read_parallel(src, tgt, limit=1)) == 1


def test_mismatched_line_counts(tmp_path):
    src = write(tmp_path / "b.de", "eins\nzwei\ndrei\n")
    tgt = write(tmp_path / "b.en", "one\ntwo\n")
    with pytest.raises(DataError) as caught:
        read_parallel(src, tgt)
    message = str(caught.value)
    assert str(src) in message and str(tgt) in message and "3 lines" in message and "has 2" in message


def test_empty_line_names_file_and_line(tmp_path):
    src = write(tmp_path / "c.de", "eins\nzwei\ndrei\n")
    tgt = write(tmp_path / "c.en", "one\n  \nthree\n")
    with pytest.raises(DataError) as caught:
        read_parallel(src, tgt)
    assert caught.value.path == str(tgt) and caught.value.line == 2
    assert str(caught.value).startswith(f"{tgt}:2: empty line")


def test_unreadable_files(tmp_path):
    src = write(tmp_path / "d.de", "eins\n")
    bad = tmp_path / "d.en"
    bad.write_bytes(b"one\n\xff\n")
    with pytest.raises(DataError) as caught:
        read_parallel(src, bad)
    assert caught.value.line == 2 and "UTF-8" in str(caught.value)
    with pytest.raises(DataError, match="cannot read"):
        read_parallel(src, tmp_path / "missing.en")


def test_truncated_real_layout(tmp_path):
    folder = tmp_path / "multi30k"
    folder.mkdir()
    write(folder / "val.de", "eins\n")
    write(folder / "val.en", "one\n")
    with pytest.raises(DataError, match="expected 1014"):
        load_multi30k(tmp_path, "val")
    with pytest.raises(ValueError, match="split"):
        load_multi30k(tmp_path, "test")
