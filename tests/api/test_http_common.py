"""The HTTP plumbing both front ends share (faceledger.http): capped uploads and staging, media
types and image responses, content negotiation, form dates, ingest job submission; and the API's
search-list row. Real requests through FastAPI (in-process), real files, a real data home."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import FastAPI, File, Request, UploadFile
from fastapi.testclient import TestClient
from PIL import Image

from faceledger.api.schemas_search import SearchListItem
from faceledger.core import Faceledger
from faceledger.errors import FaceledgerError, ImageTooLargeError, ValidationError
from faceledger.http.dates import optional_day, parse_day
from faceledger.http.media import data_uri, image_response, media_type
from faceledger.http.negotiation import wants_html
from faceledger.http.uploads import discard, read_capped, read_form_file, safe_name, stage_upload
from faceledger.search.results import SearchSummary
from faceledger.server import create_app
from faceledger.settings import Settings
from tests.netpbm import ppm
from tests.photos import encode

LIMIT = 16


def _probe_app() -> FastAPI:
    """A bare app whose routes only call the shared readers, answering problems as the API
    does (code + status)."""
    app = FastAPI()

    @app.exception_handler(FaceledgerError)
    async def _problem(request: Request, exc: FaceledgerError) -> Any:
        from fastapi.responses import JSONResponse

        return JSONResponse(exc.to_dict(), status_code=exc.status)

    @app.post("/api/read")
    async def api_read(probe: Annotated[UploadFile, File()]) -> dict[str, int]:
        return {"bytes": len(await read_capped(probe, LIMIT))}

    @app.post("/form")
    def form_read(photo: Annotated[UploadFile | None, File()] = None) -> dict[str, int]:
        return {"bytes": len(read_form_file(photo, LIMIT, "the photo", "choose a photo"))}

    @app.get("/{path:path}")
    def negotiate(request: Request) -> dict[str, bool]:
        return {"html": wants_html(request)}

    return app


@pytest.fixture(scope="module")
def probe_client() -> Iterator[TestClient]:
    with TestClient(_probe_app()) as c:
        yield c


def test_api_read_is_capped(probe_client: TestClient) -> None:
    ok = probe_client.post("/api/read", files={"probe": ("p.jpg", b"x" * LIMIT)})
    assert ok.status_code == 200 and ok.json() == {"bytes": LIMIT}
    big = probe_client.post("/api/read", files={"probe": ("p.jpg", b"x" * (LIMIT + 1))})
    assert big.status_code == 413 and big.json()["code"] == "image_too_large"
    assert f"the probe photo is over the {LIMIT}-byte limit" in big.json()["message"]


def test_form_read_refuses_missing_empty_and_large(probe_client: TestClient) -> None:
    ok = probe_client.post("/form", files={"photo": ("p.jpg", b"abc")})
    assert ok.json() == {"bytes": 3}
    missing = probe_client.post("/form", data={"other": "1"})
    assert missing.status_code == 422 and missing.json()["message"] == "choose a photo"
    empty = probe_client.post("/form", files={"photo": ("p.jpg", b"")})
    assert empty.status_code == 422 and empty.json()["message"] == "the photo is empty"
    big = probe_client.post("/form", files={"photo": ("p.jpg", b"x" * (LIMIT + 1))})
    assert big.status_code == 413 and big.json()["code"] == "image_too_large"


@pytest.mark.parametrize(("path", "accept", "html"), [
    ("/search", "text/html,application/xhtml+xml", True),
    ("/search", "application/json", False),
    ("/search", "", False),
    ("/api/v1/searches", "text/html", False),
])
def test_wants_html(probe_client: TestClient, path: str, accept: str, html: bool) -> None:
    r = probe_client.get(path, headers={"accept": accept})
    assert r.json() == {"html": html}


def test_dates() -> None:
    assert parse_day(" 2024-05-31 ", "'from'") == date(2024, 5, 31)
    assert optional_day("", "x") is None and optional_day("  ", "x") is None
    assert optional_day(None, "x") is None
    with pytest.raises(ValidationError, match=r"'to' must be a date like 2024-05-31, not '31/05'"):
        optional_day("31/05", "'to'")
    with pytest.raises(ValidationError, match="must be a date like"):
        parse_day("2024-02-30", "the outcome date")


def test_media_types_and_data_uri() -> None:
    assert media_type("a/b/photo.JPG") == "image/jpeg"
    assert media_type("x.pnm") == "image/x-portable-anymap"
    assert media_type("x.tif") == media_type("x.tiff") == "image/tiff"
    assert media_type("notes.txt") == "application/octet-stream"
    assert media_type("notes.txt", "image/jpeg") == "image/jpeg"
    assert data_uri(b"\x00\xff", "image/png") == "data:image/png;base64,AP8="


def test_image_response_original_or_web_rendition() -> None:
    img = Image.new("RGB", (40, 30), (200, 10, 10))
    jpeg = encode(img)
    same = image_response(jpeg, "stored/1.jpg", web=True, max_pixels=10**6)
    assert same.body == jpeg and same.media_type == "image/jpeg"
    netpbm = ppm(img)
    raw = image_response(netpbm, "stored/2.pnm", web=False, max_pixels=10**6)
    assert raw.body == netpbm and raw.media_type == "image/x-portable-anymap"
    shown = image_response(netpbm, "stored/2.pnm", web=True, max_pixels=10**6)
    assert shown.media_type == "image/png" and bytes(shown.body).startswith(b"\x89PNG")
    with Image.open(io.BytesIO(bytes(shown.body))) as back:
        assert back.size == (40, 30)


def test_search_list_row_api_shape() -> None:
    """The service's row carries ``status`` for the web page; the API's model leaves it out,
    as the API always did, and keeps every other field as it is."""
    row = asdict(SearchSummary(7, "ivy", "OP-1", "criminal investigation", "robbery",
                               "investigate", 3, "pending", "2024-05-31T09:30:00+00:00", 42))
    api = SearchListItem.model_validate(row).model_dump()
    assert api == {k: v for k, v in row.items() if k != "status"} and len(api) == 9


def test_safe_name() -> None:
    assert safe_name("../../etc/passwd") == "etc/passwd"
    assert safe_name("C:\\photos\\a.jpg") == "C:/photos/a.jpg"
    assert safe_name("a/.hidden/b.jpg") is None and safe_name("") is None
    assert safe_name("a/b/c/d/e/f.jpg") == "c/d/e/f.jpg"


def _upload(name: str, data: bytes) -> UploadFile:
    return UploadFile(io.BytesIO(data), filename=name)


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Faceledger]:
    app = Faceledger(Settings(home=tmp_path / "home", workers=1, max_upload_bytes=LIMIT,
                              max_upload_files=3))
    yield app
    app.close()


def _left(core: Faceledger) -> list[Path]:
    root = core.settings.home / "uploads"
    return sorted(p for p in root.rglob("*")) if root.exists() else []


def test_stage_upload_keeps_names_and_manifest(core: Faceledger) -> None:
    files = [_upload("a/p.jpg", b"1"), _upload("b/p.jpg", b"2"), _upload("a/p.jpg", b"3")]
    staged, manifest = asyncio.run(stage_upload(core, files, _upload("m.CSV", b"path\n")))
    assert staged.name == "files" and staged.parent.parent == core.settings.home / "uploads"
    assert sorted(str(p.relative_to(staged)) for p in staged.rglob("*.jpg")) == [
        "a/p-1.jpg", "a/p.jpg", "b/p.jpg"]
    assert manifest == staged / "manifest.csv" and manifest.read_bytes() == b"path\n"
    discard(staged)
    assert _left(core) == []


@pytest.mark.parametrize(("files", "manifest", "error"), [
    ([], None, "no files uploaded"),
    ([_upload(f"{i}.jpg", b"x") for i in range(4)], None, "4 files in one upload"),
    ([_upload(".hidden.jpg", b"x")], None, "no usable files"),
    ([_upload("a.jpg", b"x")], _upload("m.txt", b"x"), "must be a .csv or .jsonl"),
    ([_upload("a.jpg", b"x"), _upload("big.jpg", b"x" * (LIMIT + 1))], None, "big.jpg: over"),
])
def test_refused_upload_leaves_nothing(core: Faceledger, files: list[UploadFile],
                                       manifest: UploadFile | None, error: str) -> None:
    with pytest.raises((ValidationError, ImageTooLargeError), match=error):
        asyncio.run(stage_upload(core, files, manifest))
    assert _left(core) == []


def test_failed_job_submission_removes_the_upload_api_and_web(tmp_path: Path) -> None:
    """Ingest into a collection that does not exist: refused with 404 by the API and the web
    page alike, through the one submission path, and the staged upload is gone."""
    settings = Settings(home=tmp_path / "home", workers=1, cookie_secure=False)
    core = Faceledger(settings)
    _, token = core.initialise("root", "root-password-1")
    core.close()
    photo = ("p.jpg", encode(Image.new("RGB", (20, 20))), "image/jpeg")
    with TestClient(create_app(settings, load_models=False)) as c:
        r = c.post("/api/v1/ingest", data={"collection": "nope"}, files={"files": photo},
                   headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 404 and r.json()["code"] == "not_found"
        c.post("/login", data={"name": "root", "password": "root-password-1"},
               headers={"accept": "text/html"})
        page = c.get("/ingest", headers={"accept": "text/html"}).text
        csrf = page.split('name="csrf-token" content="')[1].split('"')[0]
        r = c.post("/ingest", data={"collection": "nope", "csrf_token": csrf},
                   files={"files": photo}, headers={"accept": "text/html"})
        assert r.status_code == 404 and "nope" in r.text
    uploads = settings.home / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []
