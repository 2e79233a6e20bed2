"""Parallel text: a source file and a target file, one sentence a line, aligned by line number.

Lines are split on '\\n' only (str.splitlines would also split on characters such as NEL or
U+2028 inside a sentence). Every problem raises DataError naming the file and, where there is
one, the line.
"""
from __future__ import annotations

import html
from pathlib import Path

from restlm.data.examples import Example
from restlm.data.location import data_root
from restlm.errors import DataError

MULTI30K_SPLITS = {"train": 29000, "val": 1014, "test_2016_flickr": 1000}
IWSLT14_VALID_LINES = 7283


def read_parallel(src_path: str | Path, tgt_path: str | Path, limit: int | None = None) -> list[Example]:
    """Read line-aligned source and reference files into Examples.

    Example.text is the source line, Example.target the reference line, uid "<source stem>:<line>"
    (line counted from 1) and meta {"line": line}. Raises DataError when the files have different
    line counts (naming both and their counts), on an empty or blank line (file:line), and on
    unreadable or non-UTF-8 files. `limit` keeps the first n pairs; the whole files are checked.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, not {limit}")
    src_path, tgt_path = Path(src_path), Path(tgt_path)
    sources, targets = _lines(src_path), _lines(tgt_path)
    if len(sources) != len(targets):
        raise DataError(src_path, f"{len(sources)} lines but {tgt_path} has {len(targets)}: the files are not aligned")
    if not sources:
        raise DataError(src_path, "no lines")
    pairs = list(zip(sources, targets))[:limit]
    stem = src_path.stem
    return [Example(text=s, target=t, uid=f"{stem}:{i}", meta={"line": i}) for i, (s, t) in enumerate(pairs, 1)]


def load_multi30k(root: str | Path | None, split: str, source: str = "de", target: str = "en",
                  limit: int | None = None) -> list[Example]:
    """Multi30k task 1 (raw text): files root/multi30k/{split}.{source} and .{target}.

    `split` is train, val or test_2016_flickr; `root` is the data root (None: `data_root()`).
    Raises DataError when a file does not hold the published number of lines.
    """
    if split not in MULTI30K_SPLITS:
        raise ValueError(f"Multi30k split must be one of {', '.join(MULTI30K_SPLITS)}, not {split!r}")
    folder = _root(root) / "multi30k"
    return _checked(folder / f"{split}.{source}", folder / f"{split}.{target}", MULTI30K_SPLITS[split], limit)


def load_iwslt14_valid(root: str | Path | None, source: str = "de", target: str = "en",
                       limit: int | None = None, unescape: bool = False) -> list[Example]:
    """IWSLT14 de-en, fairseq's validation split: root/iwslt14_deen/valid.{source} and .{target}.

    The text is tokenized and lower-cased, with Moses escapes (`&apos;`, `&quot;`, `&amp;`, ...);
    `unescape=True` turns those back into characters, for scoring a model that writes plain text.
    """
    folder = _root(root) / "iwslt14_deen"
    examples = _checked(folder / f"valid.{source}", folder / f"valid.{target}", IWSLT14_VALID_LINES, limit)
    if not unescape:
        return examples
    return [Example(text=html.unescape(e.text), target=html.unescape(e.target), uid=e.uid, meta=e.meta)
            for e in examples]


# ---------------------------------------------------------------- plumbing
def _root(root: str | Path | None) -> Path:
    return Path(root) if root is not None else data_root()


def _checked(src_path: Path, tgt_path: Path, expected: int, limit: int | None) -> list[Example]:
    examples = read_parallel(src_path, tgt_path)
    if len(examples) != expected:
        raise DataError(src_path, f"{len(examples)} lines, expected {expected}: a truncated or different file")
    return examples[:limit] if limit is not None else examples


def _lines(path: Path) -> list[str]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(path, f"cannot read: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(path, f"not UTF-8 text (byte {error.start})", line=line) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    lines = [line.removesuffix("\r") for line in lines]  # a file saved with Windows line ends
    for number, line in enumerate(lines, 1):
        if not line.strip():
            raise DataError(path, "empty line: every line must hold a sentence", line=number)
    return lines
