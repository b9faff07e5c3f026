"""`adaptvc report`: the HTML file on its own (self-contained, escaped) and in a real
headless browser (Debian's chromium through Playwright): no console errors, no request but
the file itself, one graph node per version, one line per metric and adapter, a table
that sorts when a header is clicked, and a page that prints."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import adaptvc
from adaptvc.manifest import AdapterVersion
from adaptvc.overview.page import _storage_section
from tests.browser import open_page
from tests.conftest import run_cli
from tests.history_helpers import synthesise_history
from tests.overview_helpers import HOSTILE, _history_template, _initialised_template, history  # noqa: F401
from tests.versioning_helpers import avc_repo, write_adapter  # noqa: F401 - fixture

pytestmark = pytest.mark.torchless

REFS = ["task_a@v1", "task_a@v2", "task_a@v3", "task_a@v4", "task_b@v1"]


# What the page is made of: no img, link, iframe, object, embed, style sheet or font.
ALLOWED_TAGS = {
    *"html head meta title style body header h1 h2 p nav a section div span b br sub script".split(),
    *"table thead tbody tr th td button figure figcaption".split(),
    *"svg g rect text path line polyline circle title".split(),
}


def _tags(html: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every start tag with its attributes, as a browser's tokenizer sees them."""
    from html.parser import HTMLParser

    found: list[tuple[str, list[tuple[str, str]]]] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, [(k, v or "") for k, v in attrs]))

    Collect(convert_charrefs=True).feed(html)
    return found


def _report(*args: str) -> tuple[Path, dict]:
    proc = run_cli("report", *args, "--json", check=True)
    doc = json.loads(proc.stdout)
    return Path(doc["path"]), doc


def test_report_file_is_self_contained_and_escapes_user_text(history):
    path, doc = _report("-o", "out/report.html")
    assert path == history / "out" / "report.html" and doc["versions"] == 5
    html = path.read_text(encoding="utf-8")
    assert doc["bytes"] == len(html.encode("utf-8"))
    # only our own script; the hostile message is text
    assert html.count("<script") == 1
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in html
    assert "<img" not in html
    # nothing to fetch: no external URL but the SVG namespace, no src=, links only to anchors
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}
    tags = _tags(html)
    assert {name for name, _ in tags} <= ALLOWED_TAGS
    assert not [a for _, attrs in tags for a in attrs if a[0] in ("src", "srcset", "xlink:href")]
    assert all(value.startswith("#") for _, attrs in tags for key, value in attrs if key == "href")
    # and the browser is told so: nothing from anywhere, our one script by its hash
    (csp,) = [
        dict(a)["content"] for t, a in tags if t == "meta" and dict(a).get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp.startswith("default-src 'none';") and "script-src 'sha256-" in csp
    # the text form prints the path on stdout
    proc = run_cli("report", "task_a", "-o", "a.html", check=True)
    assert proc.stdout.strip() == str(history / "a.html")


def test_report_in_the_browser(history):
    path, doc = _report()
    assert sorted(doc["metrics"]) == ["accuracy", "eval_loss", "loss"]
    with open_page(path) as page:
        assert page.console_errors == []
        assert page.requests == [path.resolve().as_uri()]
        assert page.evaluate("window.__xss") is None  # the message's script and onerror never ran
        # one node per version, an edge per parent link, the fork across adapters marked
        nodes = page.locator("svg.lineage g.node")
        assert sorted(nodes.evaluate_all("els => els.map(e => e.dataset.ref)")) == REFS
        assert page.locator("svg.lineage path.edge").count() == 4
        assert page.locator("svg.lineage path.edge.fork").count() == 1
        # one chart per metric; in each, one line per adapter that records it
        lines = page.locator("svg.chart polyline.series").evaluate_all(
            "els => els.map(e => [e.dataset.metric, e.dataset.adapter, e.points.length])"
        )
        assert sorted(map(tuple, lines)) == [
            ("accuracy", "task_a", 2),
            ("eval_loss", "task_a", 4),
            ("eval_loss", "task_b", 1),
            ("loss", "task_a", 3),
        ]
        assert page.locator("svg.chart").count() == 3
        # default diffs: each version against its parent, weights being local
        pairs = page.locator("figure.diff").evaluate_all("els => els.map(e => [e.dataset.a, e.dataset.b])")
        assert sorted(map(tuple, pairs)) == [
            ("task_a@v1", "task_a@v2"),
            ("task_a@v2", "task_a@v3"),
            ("task_a@v2", "task_b@v1"),
            ("task_a@v3", "task_a@v4"),
        ]
        # 2 layers x (q_proj, v_proj) per heatmap
        assert page.locator("figure.diff").first.locator("rect.cell").count() == 4
        _check_sorting(page)
        # print: no navigation, the scroll boxes open up
        page.emulate_media(media="print")
        assert page.locator("nav").evaluate("e => getComputedStyle(e).display") == "none"
        assert page.locator("#versions .scroll").evaluate("e => getComputedStyle(e).overflow") == "visible"
        assert page.console_errors == []


def _check_sorting(page) -> None:
    def refs() -> list[str]:
        return page.locator("#compare tbody th").evaluate_all("els => els.map(e => e.firstChild.textContent.trim())")

    def click(column: str) -> None:
        page.locator("#compare thead th button", has_text=re.compile(f"^{column}$")).click()

    assert refs() == ["task_a@v4", "task_a@v3", "task_a@v2", "task_a@v1", "task_b@v1"]
    click("eval_loss")
    assert refs() == ["task_b@v1", "task_a@v4", "task_a@v2", "task_a@v3", "task_a@v1"]
    header = page.locator("#compare thead th", has_text=re.compile("^eval_loss$"))
    assert header.get_attribute("aria-sort") == "ascending"
    click("eval_loss")
    assert refs() == ["task_a@v1", "task_a@v3", "task_a@v4", "task_a@v2", "task_b@v1"]
    assert header.get_attribute("aria-sort") == "descending"
    click("loss")  # v3 and task_b record no loss: last
    assert refs() == ["task_a@v4", "task_a@v2", "task_a@v1", "task_a@v3", "task_b@v1"]
    click("ref")
    assert refs() == REFS


def test_report_given_pairs_and_bad_ones(history):
    path, doc = _report("task_a", "--diff", "task_a@v1", "task_a@v4", "-o", "pair.html")
    assert doc["diffs"] == [["task_a@v1", "task_a@v4"]] and doc["adapters"] == ["task_a"]
    html = path.read_text(encoding="utf-8")
    assert html.count('<figure class="diff"') == 1 and "task_b@v1" not in html
    proc = run_cli("report", "--diff", "task_a@v1", "task_a@v9")
    assert proc.returncode == 1 and "Error:" in proc.stderr and "v9" in proc.stderr
    # default diffs skip versions whose weights are not in the local cache, and say so
    for obj in (history / ".dvc" / "cache").rglob("*"):
        if obj.is_file():
            obj.chmod(0o644)
            obj.unlink()
    path, doc = _report("-o", "nocache.html")
    assert doc["diffs"] == [] and any("not in the local cache" in n for n in doc["notes"])


def test_storage_counts_shared_weights_once():
    def version(n: int, md5: str, size: int) -> AdapterVersion:
        return AdapterVersion("a", n, md5, size, "m", "x", f"2026-01-0{n}T00:00:00+00:00")

    versions = [version(1, "1" * 32, 1000), version(2, "2" * 32, 3000), version(3, "1" * 32, 1000)]
    refs = {(v.adapter, v.version, v.id): v.ref for v in versions}
    html = _storage_section(versions, refs, ("a",))
    assert "<td>3</td><td>2</td><td>5.0 KB</td><td>4.0 KB</td>" in html  # 3 versions, 2 objects
    assert html.count('class="bar shared"') == 1


def test_report_of_1000_versions_renders(avc_repo):
    write_adapter(avc_repo / "adapters" / "task_a", 0)
    adaptvc.save(None, adapter="task_a", message="first", metrics={"eval_loss": 2.0, "loss": 1.8, "epoch": 1.0})
    synthesise_history(avc_repo, 1000)
    path, doc = _report("-o", "big.html")
    assert doc["versions"] == 1000 and doc["metrics"] == ["epoch", "eval_loss", "loss"]
    with open_page(path) as page:
        assert page.console_errors == []
        assert page.requests == [path.resolve().as_uri()]
        assert page.locator("svg.lineage g.node").count() == 1000
        assert page.locator("svg.chart polyline.series").count() == 3
        assert page.locator("#compare tbody tr").count() == 1000
        # the main line stays in the first lane: the newest version is at the top left
        box = page.locator('svg.lineage g.node[data-ref="task_a@v1000"] rect').first
        assert (box.get_attribute("x"), box.get_attribute("y")) == ("12", "12")
        page.locator("#compare thead th button", has_text=re.compile("^eval_loss$")).click()
        best = adaptvc.best("task_a", metric="eval_loss").ref
        assert page.locator("#compare tbody th").first.evaluate("e => e.firstChild.textContent.trim()") == best
