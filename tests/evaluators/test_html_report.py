"""The HTML report in a real browser: headless Chromium renders it (a screenshot that is not
blank), and the tables it shows are the store's numbers."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from planted.evaluators import Store, Suite, ToySpec, run, summarize, write_report
from planted.evaluators._methods import methods_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync",
          "--disable-component-update", "--no-first-run", "--disable-quic", "--hide-scrollbars"]


class _Tables(HTMLParser):
    """The leaderboard tables of a page: their rows as lists of cell texts; and every image."""

    def __init__(self):
        super().__init__()
        self.tables, self.images, self._cell, self._row, self._in = [], [], None, None, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and "leaderboard" in (attrs.get("class") or ""):
            self._in = True
            self.tables.append([])
        elif tag == "tr" and self._in:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""
        elif tag == "img":
            self.images.append(attrs.get("src", ""))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1].append(self._row)
            self._row = None
        elif tag == "table":
            self._in = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A store holding the quick suite, the circuits suite and a small connectome suite, and its report."""
    folder = tmp_path_factory.mktemp("html")
    store = folder / "s.sqlite"
    run("quick", methods=["pca", "ica"], seeds=[0, 1], store=store, progress=False)
    run("circuits", methods=["activation-patching", "gradient-x-input"], seeds=[0], store=store, progress=False)
    recording = Suite(name="connectome-small", task="connectivity", seeds=(0,),
                      methods=methods_for("connectivity", "correlation-raw", "partial-correlation"),
                      toys=(ToySpec("small", "connectome", dict(n_neurons=60, duration=10.0, n_modules=2, weight=6.0,
                                                                observation="spikes")),))
    run(recording, store=store, progress=False)
    with Store(store) as s:
        results = s.results()
        paths = write_report(results, folder / "report", store=s)
    return folder / "report" / "report.html", results, paths


@pytest.mark.slow
def test_the_page_is_self_contained_and_shows_every_suite_and_figure(report):
    page, results, paths = report
    text = page.read_text()
    assert "<script" not in text and "http://" not in text.replace("http://www.w3.org", "")
    for suite in ("quick", "circuits", "connectome-small"):
        assert f"suite {suite} " in text
    parser = _Tables()
    parser.feed(text)
    pngs = [p for p in paths if p.suffix == ".png"]
    assert len(parser.images) == len(pngs) >= 8
    for src in parser.images:  # every figure is an embedded PNG that decodes
        Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).verify()
    for word in ("Paired comparisons", "Failure-mode catalog", "chance mmcs", "Higher is better"):
        assert word in text


def _rendered_tables(page, tmp_path):
    dom = subprocess.run([CHROMIUM, *_FLAGS, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    parser = _Tables()
    parser.feed(dom.stdout)
    return parser


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (apt-get install chromium)")
def test_chromium_renders_the_page_and_its_tables_are_the_stores_numbers(report, tmp_path):
    page, results, paths = report
    shot = tmp_path / "shot.png"
    proc = subprocess.run([CHROMIUM, *_FLAGS, f"--screenshot={shot}", "--window-size=1280,3000", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    image = np.asarray(Image.open(shot).convert("L"))
    assert image.shape == (3000, 1280)
    assert (image < 250).mean() > 0.02  # text, tables and figures drawn, not a blank page
    assert len(np.unique(image)) > 50  # figures, not only text
    parser = _rendered_tables(page, tmp_path)
    assert len(parser.tables) == 3  # one leaderboard per suite version
    shown = {}
    for table in parser.tables:
        header = table[0]
        for row in table[1:]:
            for name, cell in zip(header, row):
                match = re.match(r"([-0-9.]+) ± ([0-9.]+)", cell)
                if match:
                    shown[(row[0], row[1], name.split()[0])] = float(match.group(1))
    expected = {(s.toy, s.method, s.metric): s.mean for s in summarize(results)}
    compared = 0
    for key, value in shown.items():
        assert key in expected, key
        assert value == pytest.approx(expected[key], abs=5e-4), key
        compared += 1
    assert compared >= 30
    assert {("sparse-r2", "pca", "mmcs"), ("plain", "activation-patching", "edge_auroc"),
            ("small", "correlation-raw", "auroc")} <= set(shown)
