"""Check that a report.html renders in headless Chromium.

    python scripts/check_report_renders.py RUN_DIR/report.html [--screenshot PAGE.png]

Checks: every table cell of the page appears in the DOM Chromium builds; there is at least
one <img> and each carries a data: URI that decodes to a valid PNG; a screenshot of the
page is not blank. Prints one line per check; exit 0 when all pass, 1 when one fails,
2 when Chromium is missing or fails to run.
"""
from __future__ import annotations

import argparse
import base64
import html
import io
import re
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

from matplotlib import image as mpimg

CHROMIUM = Path("/usr/bin/chromium")
WINDOW = (1200, 2000)
MIN_PIXEL_STD = 0.02  # on 0..1 pixel values; a blank page is exactly 0
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


class _CellText(HTMLParser):
    """Collects the text of every <td>/<th>, whitespace collapsed."""

    def __init__(self):
        super().__init__()
        self.cells: list[str] = []
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("td", "th"):
            self.cells.append("")
            self._depth += 1

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._depth:
            self._depth -= 1

    def handle_data(self, data):
        if self._depth:
            self.cells[-1] += data


def table_cells(html_text: str) -> list[str]:
    """The text of every table cell in an HTML page, whitespace collapsed, empty ones dropped."""
    parser = _CellText()
    parser.feed(html_text)
    return [t for t in (" ".join(c.split()) for c in parser.cells) if t]


def run_chromium(html_path: Path, extra: list[str], timeout_s: float = 60) -> str:
    """Run headless Chromium on the file with a fresh profile; returns stdout."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}",
               f"--window-size={WINDOW[0]},{WINDOW[1]}", *extra, html_path.resolve().as_uri()]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return done.stdout


def png_data_uris(dom: str) -> list[bytes]:
    """The decoded payload of every <img src="data:...;base64,..."> in the DOM."""
    srcs = re.findall(r'<img\b[^>]*\bsrc="([^"]*)"', dom)
    return [base64.b64decode(s.split(",", 1)[1]) if s.startswith("data:image/png;base64,") else b""
            for s in srcs]


def check_dom(html_text: str, dom: str) -> list[str]:
    """Failures (empty when fine) of the rendered DOM against the source page."""
    failures = []
    dom_text = " ".join(html.unescape(re.sub(r"<[^>]+>", "", dom)).split())
    cells = table_cells(html_text)
    if not cells or "<table" not in dom:
        failures.append("no table in the page")
    failures += [f"table cell missing from the DOM: {c!r}" for c in cells
                 if c not in dom_text]
    images = png_data_uris(dom)
    if not images:
        failures.append("no <img> in the DOM")
    for i, data in enumerate(images):
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            failures.append(f"<img> {i} is not a data: URI of a PNG")
            continue
        try:
            mpimg.imread(io.BytesIO(data), format="png")
        except Exception as err:  # noqa: BLE001 - any decode failure is the finding
            failures.append(f"<img> {i} is a PNG that does not decode ({err!r})")
    return failures


def check_screenshot(png_path: Path) -> list[str]:
    """Failures (empty when fine): the screenshot is missing, the wrong size or blank."""
    if not png_path.exists():
        return ["chromium wrote no screenshot"]
    pixels = mpimg.imread(png_path)[..., :3]
    failures = []
    if pixels.shape[:2] != (WINDOW[1], WINDOW[0]):
        size = f"{pixels.shape[1]}x{pixels.shape[0]}"
        failures.append(f"screenshot is {size}, not {WINDOW[0]}x{WINDOW[1]}")
    if float(pixels.std()) <= MIN_PIXEL_STD:
        failures.append(f"screenshot looks blank (pixel std {pixels.std():.4f})")
    return failures


def check_report(html_path: Path, screenshot: Path) -> list[str]:
    """Render html_path (DOM and a screenshot written to `screenshot`); returns the failures."""
    dom = run_chromium(html_path, ["--dump-dom"])
    run_chromium(html_path, [f"--screenshot={screenshot.resolve()}"])
    return check_dom(html_path.read_text(encoding="utf-8"), dom) + check_screenshot(screenshot)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Check that a report.html renders in Chromium.")
    parser.add_argument("html", type=Path, help="the report.html to check")
    parser.add_argument("--screenshot", type=Path,
                        help="keep the screenshot here (default: discard it)")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} not found: install it (apt-get install -y chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="report-check-") as tmp:
        screenshot = args.screenshot or Path(tmp) / "page.png"
        try:
            failures = check_report(args.html, screenshot)
        except (RuntimeError, subprocess.TimeoutExpired) as err:
            print(f"{args.html}: {err}", file=sys.stderr)
            return 2
    for failure in failures:
        print(f"FAIL {args.html}: {failure}")
    if not failures:
        print(f"ok {args.html}: tables and images render, screenshot not blank")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
