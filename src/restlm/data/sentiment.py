"""The UCI sentiment sentences (Kotzias et al. 2015): `sentence<TAB>label` files, label 1 positive.

Lines are split on "\\n" only: the IMDB file holds NEL characters inside sentences, which
`str.splitlines` would take for line breaks.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from restlm.data.examples import Example
from restlm.data.location import data_root
from restlm.data.tabular import read_text
from restlm.errors import ConfigError, DataError

SOURCES = {"imdb": "imdb_labelled.txt", "yelp": "yelp_labelled.txt", "amazon": "amazon_cells_labelled.txt"}


def read_sentiment(path: str | Path) -> list[Example]:
    """Example(text=sentence, label=0 or 1) per line, uid "<file stem>-<line>".

    Raises DataError naming file and line for a line without a tab, a label other than
    0 or 1, or an empty sentence, and for a file with no sentences.
    """
    path = Path(path)
    examples = []
    for line, raw in enumerate(read_text(path).split("\n"), start=1):
        if not raw.strip():
            continue
        sentence, tab, label = raw.rpartition("\t")
        if not tab:
            raise DataError(path, "expected 'sentence<TAB>label'", line=line)
        if label.strip() not in ("0", "1"):
            raise DataError(path, f"label {label.strip()!r} is not 0 or 1", line=line)
        if not sentence.strip():
            raise DataError(path, "empty sentence", line=line)
        examples.append(Example(text=sentence.strip(), label=int(label), uid=f"{path.stem}-{line}",
                                meta={"path": str(path), "line": line}))
    if not examples:
        raise DataError(path, "no sentences")
    return examples


def read_sentiment_sources(sources: Sequence[str] = tuple(SOURCES), root: str | Path | None = None) -> list[Example]:
    """The sentences of the named sources ('imdb', 'yelp', 'amazon'), in that order.

    `root` is the data root (default: data_root()); the files are under `<root>/sentiment/`.
    """
    unknown = [s for s in sources if s not in SOURCES]
    if unknown or not sources:
        raise ConfigError("sentiment.sources", f"{unknown or 'none given'}: use some of {', '.join(SOURCES)}")
    folder = (Path(root) if root is not None else data_root()) / "sentiment"
    return [e for source in sources for e in read_sentiment(folder / SOURCES[source])]
