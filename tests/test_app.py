"""The dashboard entry point (AppTest, no browser)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT


def test_app_starts_and_says_what_is_coming():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()
    assert not at.exception
    assert at.title[0].value == "BBB cell analyser"
    text = " ".join(m.value for m in at.markdown)
    assert "python -m bbbcore segment" in text and "Coming to this dashboard" in " ".join(s.value for s in at.subheader)
