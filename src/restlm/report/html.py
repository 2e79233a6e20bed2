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

_IMG_SRC = re.compile(r'(<img\b[^>]*\bsrc=")([^"]+)(")')


def _embed_images(body: str, image_dir: Path) -> str:
    """Replace each relative <img src> with a data: URI of the file under image_dir."""
    def to_data_uri(match: re.Match) -> str:
        src = html.unescape(match.group(2))
        if re.match(r"^[a-z][a-z0-9+.-]*:", src):  # already data:, http: ...
            return match.group(0)
        data = (image_dir / src).read_bytes()  # a missing figure is a bug: let it raise
        mime = "image/png" if src.lower().endswith(".png") else "application/octet-stream"
        uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        return match.group(1) + uri + match.group(3)
    return _IMG_SRC.sub(to_data_uri, body)


def markdown_to_html(md_text: str, title: str, image_dir: Path) -> str:
    """Render markdown (with the `tables` extension) to a standalone HTML page.

    In: the markdown, the page title, and the directory that relative image paths point into.
    Out: the HTML text; every relative image is inlined, so the page is one file.
    """
    body = markdown.markdown(md_text, extensions=["tables"], output_format="html")
    body = body.replace("<table>", '<div class="table-wrap"><table>').replace(
        "</table>", "</table></div>")  # wide Table 2 scrolls instead of overflowing the page
    body = _embed_images(body, Path(image_dir))
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n"
            f"<body>\n{body}\n</body>\n</html>\n")
