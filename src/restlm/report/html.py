"""Markdown -> one self-contained HTML page: a little CSS, PNGs embedded as base64 data URIs."""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import markdown

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1160px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { margin-top: 1.8em; border-bottom: 1px solid #eee; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 9px; border-bottom: 1px solid #ddd; }
td { white-space: nowrap; }
th { background: #f0f0f0; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; border: 1px solid #eee; }
p em { color: #555; font-size: 14px; }
code, pre { background: #f5f5f5; border-radius: 3px; }
pre { padding: .8em; font-size: 12px; }
"""

_IMG = re.compile(r'<img\b[^>]*\bsrc="([^"]*)"[^>]*>')
# raw HTML, and links, in the markdown are never markup: every string of a config, a data file or a
# results file reaches the page as text. Images stay: only the run's own figures are embedded.
_UNSAFE_PATTERNS = ("html", "entity", "link", "reference", "short_reference", "autolink", "automail")


class _TextOnly(markdown.Extension):
    def extendMarkdown(self, md):  # noqa: N802 (markdown's name)
        md.preprocessors.deregister("html_block")
        for name in _UNSAFE_PATTERNS:
            if name in md.inlinePatterns:
                md.inlinePatterns.deregister(name)


def _embed_images(body: str, image_dir: Path, figures: set[str]) -> str:
    """Replace each <img> of one of `figures` (bare file names under image_dir) by the image as a
    data: URI; any other <img> (a path, a URL, a name the report did not write) becomes text."""
    def to_data_uri(match: re.Match) -> str:
        src = html.unescape(match.group(1))
        if src not in figures or Path(src).name != src or not (image_dir / src).is_file():
            return f"<em>[figure not embedded: {html.escape(src)}]</em>"
        data = (image_dir / src).read_bytes()
        uri = f"data:image/png;base64,{base64.b64encode(data).decode('ascii')}"
        return match.group(0).replace(f'src="{match.group(1)}"', f'src="{uri}"', 1)
    return _IMG.sub(to_data_uri, body)


def markdown_to_html(md_text: str, title: str, image_dir: Path, figures: set[str] | None = None) -> str:
    """Render markdown (with the `tables` extension) to a standalone HTML page.

    In: the markdown, the page title, the directory the figures are in, and the file names of the
    figures the report wrote (`figures`; only those are embedded). Raw HTML and links in the
    markdown are escaped: they come from configs, data and results files, never from the report.
    Out: the HTML text, one self-contained file.
    """
    body = markdown.markdown(md_text, extensions=["tables", _TextOnly()], output_format="html")
    body = body.replace("<table>", '<div class="table-wrap"><table>').replace(
        "</table>", "</table></div>")  # wide Table 2 scrolls instead of overflowing the page
    body = _embed_images(body, Path(image_dir), set(figures or ()))
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n"
            f"<body>\n{body}\n</body>\n</html>\n")
