"""The CSP allows no inline script or style: keep the templates free of them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "faceledger" / "web"
TEMPLATES = sorted((WEB / "templates").glob("*.html"))


def test_templates_exist() -> None:
    names = {p.name for p in TEMPLATES}
    assert {"base.html", "login.html", "search.html", "results.html", "compare.html",
            "ingest.html", "job.html", "admin.html", "ledger.html", "error.html",
            "approvals.html", "oversight.html", "subjects.html", "policy.html",
            "model.html"} <= names
    assert (WEB / "static" / "app.js").is_file() and (WEB / "static" / "app.css").is_file()


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_no_inline_script_style_or_handlers(path: Path) -> None:
    text = path.read_text()
    assert not re.search(r"\sstyle\s*=", text, re.I), "inline style attribute"
    assert not re.search(r"<style[\s>]", text, re.I), "inline <style> element"
    for tag in re.findall(r"<script\b[^>]*>", text, re.I):
        assert "src=" in tag, f"inline script: {tag}"
    assert not re.findall(r"<script\b[^>]*>\s*[^<\s]", text, re.I), "script with a body"
    assert not re.search(r"\son[a-z]+\s*=", text, re.I), "inline event handler"
    assert not re.search(r"javascript:", text, re.I)
    assert not re.search(r"(src|href)=\"(https?:)?//", text, re.I), "external resource"


def test_static_files_fetch_nothing_external() -> None:
    for path in (WEB / "static").iterdir():
        if path.suffix in (".js", ".css"):
            text = path.read_text()
            assert not re.search(r"https?://|@import|url\(\s*['\"]?//", text), path.name
            assert "eval(" not in text and "innerHTML" not in text, path.name
