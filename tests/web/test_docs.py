"""/docs in a real browser: Swagger UI renders the OpenAPI 3.1 document offline, under the strict CSP."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect


def test_docs_list_operations_offline(open_session: Any) -> None:
    s = open_session()
    outside: list[str] = []
    s.page.on("request", lambda r: outside.append(r.url)
              if not r.url.startswith((s.server.url, "data:", "blob:")) else None)
    seen: list[str] = []
    s.page.on("requestfinished", lambda r: seen.append(r.url))
    response = s.goto("/docs", shot="docs")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    # Operations from the 3.1 document are listed (Swagger UI 4 stopped at "no valid version field").
    ops = s.page.locator(".opblock")
    expect(ops.first).to_be_visible(timeout=30_000)
    assert ops.count() > 20
    expect(s.page.locator(".opblock-summary-path[data-path='/api/v1/searches']").first).to_be_visible()
    expect(s.page.locator(".info .title")).to_contain_text("faceledger")
    assert s.page.locator(".errors-wrapper").count() == 0
    assert not s.page.get_by_text("does not specify a valid version field").count()
    # Expanding one operation shows its parameters (the UI is live, not a static shell).
    s.page.locator(".opblock-summary-path[data-path='/api/v1/searches']").first.click()
    expect(s.page.locator(".opblock.is-open")).to_have_count(1)
    s.snap("docs-operation-open")
    assert any(u.endswith("/api/v1/openapi.json") for u in seen)
    # The bearer scheme is declared, so a reader can try operations with a token.
    expect(s.page.locator("button.authorize")).to_be_visible()
    assert not outside, f"/docs fetched from outside: {outside}"
    s.assert_clean()
