"""The HTML report built from hostile strings (issue 15): every string of a config, a data file or
a results file is text on the page, never markup; only the run's own figures are embedded."""
from __future__ import annotations

import re
from html.parser import HTMLParser

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


TAGGED = [text for text in HOSTILE if "<" in text] + ["line one\n\n<script>alert(2)</script>\n| a | b |"]
FIELDS = ["title", "model name", "data path", "zero-shot model", "baseline row", "config value",
          "primary metric", "histogram label"]


class _Tags(HTMLParser):
    ACTIVE = {"script", "iframe", "svg", "a", "object", "embed", "link", "meta", "base", "form", "math"}

    def __init__(self):
        super().__init__()
        self.active: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.ACTIVE and not (tag == "meta" and attrs == [("charset", "utf-8")]):
            self.active.append(tag)
        for name, value in attrs:
            if name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                self.active.append(f"{tag} {name}")
            if name == "src" and not (value or "").startswith("data:image/png;base64,"):
                self.active.append(f"{tag} src={value}")


def parsed_active_markup(page: str) -> list[str]:
    """What a browser would run or fetch, as an HTML parser sees the page (attribute values unescaped)."""
    parser = _Tags()
    parser.feed(page)
    return parser.active


def hostile_field(place: str, text: str) -> dict:
    """Results with `text` in one place only, so a failure names the place."""
    results = synthetic_results(seeds=(0,), ns=(100,))
    if place == "title":
        results["title"] = f"ReST on {text}"
    elif place == "model name":
        results["config"]["model"] = text
    elif place == "data path":
        results["config"]["data"] = {"path": text}
    elif place == "zero-shot model":
        results["baselines"][f"zero-shot LLM ({text})"] = {"accuracy": [0.5], "f1": [0.5], "unparsed_fraction": 0.1}
    elif place == "baseline row":
        results["baselines"][text] = {"accuracy": [0.5], "f1": [0.5]}
    elif place == "config value":
        results["config"]["rest"] = {"reward": text}
    elif place == "primary metric":
        results["primary_metric"] = text
    else:
        results["histograms"][0]["label"] = text
    return results


@pytest.mark.parametrize("text", TAGGED)
@pytest.mark.parametrize("place", FIELDS)
def test_hostile_tags_never_reach_the_page_raw(place, text, tmp_path):
    write_report(tmp_path, hostile_field(place, text))
    page = (tmp_path / "report.html").read_text()
    body = page.split("<body>", 1)[1]
    for tag in re.findall(r"<[^<>]*>?", text):
        if tag == "</table>":  # the report's own tag: the hostile one would unbalance them
            assert body.count("</table>") == body.count("<table>")
        else:
            assert tag not in body  # only its escaped form, &lt;...
    assert active_markup(page) == [] and parsed_active_markup(page) == []
    # the report's own markup still renders
    assert body.count("<table>") >= 1 and "<h2>" in body and "<code>" in body
    assert "<strong>" in body or place == "primary metric"  # Table 2 bolds a CI; no Table 2 without accuracy


def test_an_alt_text_cannot_add_attributes_to_a_real_figure(tmp_path):
    results = synthetic_results(seeds=(0,), ns=(100,))
    results["title"] = 'x ![a" onerror="alert(1)](accuracy_by_step.png)'
    write_report(tmp_path, results)
    page = (tmp_path / "report.html").read_text()
    assert parsed_active_markup(page) == [] and 'onerror="alert' not in page
    assert len(re.findall(r'<img alt="a&quot; onerror=&quot;alert\(1\)" src="data:image/png;base64,', page)) == 1


@pytest.mark.parametrize("src", ["/etc/passwd", "../x.png", "./accuracy_by_step.png", "sub/accuracy_by_step.png",
                                 "accuracy_by_step.png/..", "..", "file:///etc/passwd", "missing.png"])
def test_embedding_takes_only_a_bare_name_of_a_figure_the_report_wrote(src, tmp_path):
    from restlm.report.html import markdown_to_html

    (tmp_path / "accuracy_by_step.png").write_bytes(b"\x89PNG own figure")
    (tmp_path.parent / "x.png").write_bytes(b"\x89PNG not ours")
    page = markdown_to_html(f"![fig]({src})\n\n![own](accuracy_by_step.png)\n", "t", tmp_path,
                            {"accuracy_by_step.png", "missing.png"})
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert embedded == ["iVBORyBvd24gZmlndXJl"]  # base64 of the own figure's bytes, once
    assert "figure not embedded" in page and "cm9vd" not in page
