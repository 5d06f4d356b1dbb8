"""The reviewers' HTML report, opened in a real browser (Debian's headless Chromium).

JavaScript is disabled: the report must render without it. First a control that the harness
does see broken pages (so a clean result means something), then the real report.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import browser
import pytest
from browser import open_page

from reports.html import write_atomically
from reports.model_card import MODEL_CARD_SECTIONS
from reports.model_report import SECTIONS
from reports.registry_io import write_logged_report

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:shap.*"),
]

PNG_1X1 = (  # one grey pixel
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5Er"
    "kJggg=="
)
BROKEN = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>broken</title></head>
<body data-answer="42"><h2>First</h2><h3 style="text-transform:uppercase">sub</h3>
<img alt="ok" src="data:image/png;base64,{PNG_1X1}"><img alt="missing" src="missing.png">
<script>console.error("script ran"); document.body.dataset.ran = "yes"; undefined_call();</script>
</body></html>"""


@pytest.fixture
def served(tmp_path) -> Iterator[str]:
    """``tmp_path`` over http on 127.0.0.1 (a thread), for the http side of the harness."""
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.mark.browser
def test_harness_sees_what_is_broken_with_javascript_off(tmp_path):
    page_file = tmp_path / "broken.html"
    page_file.write_text(BROKEN)
    png = tmp_path / "broken.png"
    with open_page(page_file, viewport=(400, 300), screenshot=png) as page:
        assert page.h2() == ["First"]
        assert page.h3() == ["SUB"]  # as rendered (CSS text-transform)
        assert [(i.alt, i.loaded) for i in page.images] == [("ok", True), ("missing", False)]
        assert (page.images[0].natural_width, page.images[0].natural_height) == (1, 1)
        assert page.scripts == 1
        assert page.evaluate("document.body.dataset.answer") == "42"  # DOM readable
        assert page.evaluate("document.body.dataset.ran") is None  # the page's script did not run
        assert page.page_errors == []
        assert [m.text for m in page.console_errors] == [
            "Failed to load resource: net::ERR_FILE_NOT_FOUND"
        ]
        assert len(page.failed_requests) == 1 and "missing.png" in page.failed_requests[0]
        assert len(page.problems()) == 3  # console error, failed request, broken image
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(RuntimeError, match="browser is closed"):
        page.evaluate("1")


@pytest.mark.browser
def test_harness_over_http_with_javascript_on(tmp_path, served):
    (tmp_path / "broken.html").write_text(BROKEN)
    with open_page(f"{served}/broken.html", javascript=True) as page:
        assert page.status == 200
        assert page.evaluate("document.body.dataset.ran") == "yes"
        assert any("undefined_call" in e for e in page.page_errors), page.page_errors
        assert "script ran" in [m.text for m in page.console_errors]
        assert any("missing.png: HTTP 404" in r for r in page.failed_requests), page.failed_requests


def test_missing_chromium_fails_loudly_never_skips(tmp_path, monkeypatch):
    monkeypatch.setattr(browser, "CHROMIUM", tmp_path / "chromium")
    hint = r"/chromium is missing: run `make test`, which installs Debian's chromium"
    with pytest.raises(browser.ChromiumMissingError, match=hint), open_page("http://127.0.0.1:9/"):
        pass


@pytest.fixture(scope="module")
def report_file(champion, tmp_path_factory) -> Path:
    """The report the champion's training run logged to MLflow, as ``icans report`` writes it
    (``test_report.py`` covers re-evaluating a cohort with ``--cohort``)."""
    out = tmp_path_factory.mktemp("browser-report") / "report.html"
    return write_logged_report("models:/icans-risk@champion", out, champion.settings)


@pytest.mark.browser
def test_report_renders_in_chromium_without_javascript(report_file, champion):
    with open_page(report_file) as page:
        assert page.problems() == []
        assert [str(m) for m in page.console] == []  # not even warnings on a static page
        assert page.scripts == 0
        assert page.title == f"Model report: icans-risk v{champion.result.model_version}"
        assert "SYNTHETIC" in page.body_text and "not clinical evidence" in page.body_text
        assert len(page.body_text) > 5_000
        assert page.h2() == list(SECTIONS)
        assert set(MODEL_CARD_SECTIONS) <= set(page.h3())
        assert all(h.visible for h in page.headings)
        assert len(page.images) >= 7  # ROC/PR, calibration, decision curve, learning curve, SHAP
        for img in page.images:
            assert img.loaded and img.alt, img
            assert img.natural_width > 100 and img.natural_height > 100, img
            assert img.width > 0 and img.height > 0, img  # laid out, not collapsed
        # Nothing is wider than the window (figures have max-width:100%), and it is long.
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        assert page.evaluate("document.documentElement.scrollHeight") > 5 * 900


@pytest.fixture(scope="module")
def patient_page(champion, tmp_path_factory) -> Path:
    """One patient's explanation page, built by the code behind POST /v1/report."""
    from api.patient import parse_patient
    from cohort.reader import read_cohort
    from features.landmarks import patient_record
    from reports.patient import build_patient_report
    from serving.model_version import ModelRuntime

    runtime = ModelRuntime.load("models:/icans-risk@champion", champion.settings)
    tables = read_cohort(champion.cohort).tables
    daily = tables["daily"]
    pid = daily[(daily["day"] <= 5) & (daily["crs_grade"] >= 2)]["patient_id"].iloc[0]
    patient = parse_patient(patient_record(tables, pid, 5))
    html = build_patient_report(patient, runtime.assess([patient])[0], runtime.identity())
    return write_atomically(html, tmp_path_factory.mktemp("browser-patient") / "patient.html")


@pytest.mark.browser
def test_patient_page_renders_and_its_waterfall_adds_up_to_the_stated_probability(patient_page):
    from scipy.special import expit

    from reports.patient import SECTIONS as PATIENT_SECTIONS

    with open_page(patient_page) as page:
        assert page.problems() == []
        assert [str(m) for m in page.console] == []
        assert page.scripts == 0
        assert page.h2() == list(PATIENT_SECTIONS)
        assert "not the patient's biology" in page.body_text
        assert len(page.images) == 1
        img = page.images[0]
        assert img.loaded and img.natural_width > 400 and img.width > 0, img
        # The rendered numbers: base log-odds + every contribution row = the stated probability.
        shap = page.evaluate(
            "[...document.querySelectorAll('table.contributions tr[data-shap]')]"
            ".map(r => parseFloat(r.dataset.shap))"
        )
        risk = page.evaluate("Object.assign({}, document.getElementById('risk').dataset)")
        headline = page.evaluate("document.getElementById('risk').innerText")
    assert len(shap) > 10
    total = float(risk["baseLogOdds"]) + sum(shap)
    assert total == pytest.approx(float(risk["logOdds"]), abs=1e-6)  # float32 trees
    stated = float(risk["probability"])
    assert float(expit(total)) == pytest.approx(stated, abs=1e-6)
    assert f"{100 * stated:.1f}%" in headline
