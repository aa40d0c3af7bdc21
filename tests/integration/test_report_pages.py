"""The reports as a person reads them: the HTML the server hands out (real PostgreSQL, real HTTP) opens in
headless Chromium as a page that is not blank, with its figure drawn, and prints on A4 paper. The
screenshots stay in test-artifacts/ for a person to look at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from ledger.runtime import Ledger
from tests.browser import Chromium, ink, is_a4, page_sizes
from tests.conftest import TokenFactory
from tests.integration.test_anomaly_review_api import raise_anomalies
from tests.stories import Story, at


@pytest.fixture
def recorded(shared_ledger: Ledger, tenant: str) -> None:
    story = Story(tenant)
    story.guideline("1.0", at(-100))
    story.credential("rad-1", "license", at(-10))
    story.view("ann-1", "1.2.3.4", at(0))
    story.annotate("ann-1", "1.2.3.4", "a1", at(1))
    story.review("rad-1", "1.2.3.4", "a1", at(2), level=3)
    shared_ledger.appender.append(story.events)


@pytest.fixture
def raised(shared_ledger: Ledger, tenant: str) -> None:
    raise_anomalies(shared_ledger, tenant)


def html_of(http: httpx.Client, token: TokenFactory, tenant: str, path: str, **query: str) -> str:
    auth = {"authorization": f"Bearer {token('auditor', tenant=tenant, mfa=True)}"}
    response = http.get(path, params={**query, "format": "html"}, headers=auth)
    assert response.status_code == 200, response.text
    return response.text


def check_printed(chromium: Chromium, page: str, tmp_path: Path, name: str) -> None:
    file = tmp_path / f"{name}.html"
    file.write_text(page, encoding="utf-8")
    png = chromium.screenshot(file, name)
    assert ink(png) > 0.01, f"the screenshot {png} is blank"
    sizes = page_sizes(chromium.pdf(file))
    assert sizes, "the printed PDF has no page"
    assert all(is_a4(size) for size in sizes), f"pages not A4 (595 x 842 pt): {sizes}"


def test_the_retention_report_reads_in_a_browser_and_prints_on_a4(
    http: httpx.Client, token: TokenFactory, tenant: str, recorded: None, chromium: Chromium, tmp_path: Path
) -> None:
    page = html_of(http, token, tenant, "/v1/reports/retention", as_of="2033-01-01")
    assert "<h1>Record retention report</h1>" in page
    assert page.count("<svg ") == 1  # events per year
    check_printed(chromium, page, tmp_path, "retention-report")


def test_the_access_review_reads_in_a_browser_and_prints_on_a4(
    http: httpx.Client, token: TokenFactory, tenant: str, raised: None, chromium: Chromium,
    tmp_path: Path,
) -> None:  # fmt: skip
    today = datetime.now(UTC).date()
    first = (today - timedelta(days=7)).isoformat()
    page = html_of(
        http, token, tenant, "/v1/reports/access-review", **{"from": first, "to": today.isoformat()}
    )
    assert "<h1>Access review</h1>" in page
    assert page.count("<svg ") == 1  # raised per rule
    check_printed(chromium, page, tmp_path, "access-review-report")


def test_a_page_without_a4_css_is_not_taken_for_a4(chromium: Chromium, tmp_path: Path) -> None:
    # The A4 check can fail: Chromium's own default paper is US Letter.
    file = tmp_path / "letter.html"
    file.write_text("<!doctype html><title>t</title><p>no page size</p>", encoding="utf-8")
    sizes = page_sizes(chromium.pdf(file))
    assert sizes
    assert not any(is_a4(size) for size in sizes)


def test_a_blank_page_is_seen_as_blank(chromium: Chromium, tmp_path: Path) -> None:
    file = tmp_path / "blank.html"
    file.write_text("<!doctype html><title>t</title>", encoding="utf-8")
    assert ink(chromium.screenshot(file, "blank-page")) == 0
