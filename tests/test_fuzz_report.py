"""The HTML report built from hostile strings (issue 15): every string of a config, a data file or
a results file is text on the page, never markup; only the run's own figures are embedded."""
from __future__ import annotations

import re

import pytest

from restlm.report import write_report
from test_report import synthetic_results

HOSTILE = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', '</table><iframe src=//evil>',
           '[click](javascript:alert(1))', '<a href="javascript:alert(1)">x</a>', '<svg onload=alert(1)>',
           '![leak](/etc/passwd)', '<http://evil.example>']


def hostile_results(text: str) -> dict:
    """Results with `text` in every place a string of the user's reaches the report."""
    results = synthetic_results(seeds=(0,), ns=(100,))
    results["title"] = f"ReST on {text}"  # from model.name and data.path
    results["config"]["model"] = text
    results["config"]["data"] = {"path": text}
    results["config"]["rest"] = {"reward": text}
    results["baselines"][f"zero-shot {text}"] = {"accuracy": [0.5], "f1": [0.5]}  # the zero-shot model's name
    results["baselines"][text] = {"accuracy": [0.5], "f1": [0.5]}
    return results


def active_markup(page: str) -> list[str]:
    """What a browser would run or fetch: script/iframe/svg tags, on* handlers, javascript: URLs, links."""
    return (re.findall(r"<(?:script|iframe|svg|a)\b", page, re.I) + re.findall(r"<[^>]+\son\w+=", page, re.I)
            + re.findall(r"<[^>]*\b(?:href|src)=\"javascript:", page, re.I))


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_strings_are_text_in_the_page(text, tmp_path):
    write_report(tmp_path, hostile_results(text))
    page = (tmp_path / "report.html").read_text()
    assert active_markup(page) == []
    images = re.findall(r'<img\b[^>]*\bsrc="([^"]*)"', page)
    assert images and all(src.startswith("data:image/png;base64,") for src in images)  # the run's own figures


@pytest.mark.parametrize("src", ["/etc/passwd", "../secret.png", "other_run/accuracy_by_step.png", "notes.txt",
                                 "https://evil.example/x.png"])
def test_only_the_runs_own_figures_are_embedded(src, tmp_path):
    (tmp_path / "notes.txt").write_text("private notes")
    (tmp_path.parent / "secret.png").write_bytes(b"\x89PNG secret")
    results = synthetic_results(seeds=(0,), ns=(100,))
    results["title"] = f"ReST ![figure]({src})"
    write_report(tmp_path, results)
    page = (tmp_path / "report.html").read_text()
    assert "cm9vd" not in page  # base64 of "root:" (/etc/passwd) is nowhere
    assert "private notes" not in page and "secret" not in page.split("<body>")[1].split("ReST")[0]
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(embedded) == len(list(tmp_path.glob("*.png")))  # one per figure the report wrote, no more
    assert "figure not embedded" in page
