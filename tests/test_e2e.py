"""Real browser: Debian's chromium driven by Playwright against streamlit run app.py."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def test_home_page_renders_in_a_browser(app_server, page):
    page.goto(app_server, timeout=30_000)
    page.get_by_text("BBB cell analyser").first.wait_for(timeout=30_000)
    assert page.get_by_test_id("stException").count() == 0
    assert page.get_by_text("Coming to this dashboard").count() == 1
