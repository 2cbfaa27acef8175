"""Model packs (faces/models/pack.py, onnx_pack.py): the manifest is checked, files are pinned
by SHA-256, a URL pack is downloaded once, licences are shown, and a pack model runs the whole
path (detect, align, embed, index, search, calibrate) with tiny ONNX models built here."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from faceledger.core import Faceledger
from faceledger.errors import ModelMismatchError
from faceledger.eval.calibrate import calibrate
from faceledger.eval.embedset import embed_dataset, walk_dataset
from faceledger.faces.embed import similarity
from faceledger.faces.models.base import ModelOptions, available_models, load_model, register_packs
from faceledger.faces.models.onnx_pack import PackFaceModel, similarity_transform, warp
from faceledger.faces.models.pack import PackError, load_folder, packs_dir, resolve
from faceledger.gallery.collections import add_collection
from faceledger.gallery.ingest import Ingest
from faceledger.governance.calibration import set_calibration
from faceledger.governance.models_service import models_overview
from faceledger.search.service import SearchRequest, run_search
from faceledger.settings import Settings
from tests.faces.packbuild import DIM, build_pack, write_manifest, zip_pack
from tests.photos import astronaut, astronaut_face, encode, grace_hopper

PACK_ID = "tiny-arc-1.0"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_pack(tmp_path_factory.mktemp("packs") / "tiny-arc")


def copy_pack(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


# ----------------------------------------------------------------------------- manifest


@pytest.mark.parametrize(("change", "words"), [
    ({"licence": None}, "licence"),
    ({"format": "something-else/2"}, "format"),
    ({"name": "Bad Name!"}, "name"),
    ({"files": [{"path": "det.onnx", "sha256": "abc", "bytes": 10}]}, "sha256"),
    ({"alignment": {"chip_size": 112, "template": [[1, 2]] * 4}}, "5 points"),
    ({"alignment": {"chip_size": 112, "template": [[1, 2]] * 4 + [[500, 2]]}}, "template"),
    ({"licence_url": "javascript:alert(1)"}, "licence_url"),
])
def test_bad_manifests_are_refused_in_plain_words(built: Path, tmp_path: Path,
                                                  change: dict[str, object], words: str) -> None:
    folder = copy_pack(built, tmp_path / "p")
    m = json.loads((folder / "manifest.json").read_text())
    m.update(change)
    if change.get("licence", "") is None:
        del m["licence"]
    write_manifest(folder, m)
    with pytest.raises(PackError, match="not a valid model pack manifest") as err:
        load_folder(folder)
    assert words in str(err.value)


def test_a_model_file_must_be_listed_with_its_checksum(built: Path, tmp_path: Path) -> None:
    folder = copy_pack(built, tmp_path / "p")
    m = json.loads((folder / "manifest.json").read_text())
    m["files"] = [f for f in m["files"] if f["path"] != "rec.onnx"]
    write_manifest(folder, m)
    with pytest.raises(PackError, match=r"embedder.file 'rec.onnx' is not in files"):
        load_folder(folder)


def test_a_folder_without_manifest_is_not_a_pack(tmp_path: Path) -> None:
    with pytest.raises(PackError, match=r"has no manifest.json"):
        load_folder(tmp_path)


def test_file_size_and_checksum_are_enforced(built: Path, tmp_path: Path) -> None:
    grown = copy_pack(built, tmp_path / "grown")
    with (grown / "rec.onnx").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(PackError, match=r"rec.onnx has .* bytes, the manifest says"):
        load_folder(grown)
    flipped = copy_pack(built, tmp_path / "flipped")
    data = bytearray((flipped / "det.onnx").read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes
    (flipped / "det.onnx").write_bytes(bytes(data))
    with pytest.raises(PackError, match=r"det.onnx has SHA-256 .* manifest pins"):
        load_folder(flipped)
    gone = copy_pack(built, tmp_path / "gone")
    (gone / "det.onnx").unlink()
    with pytest.raises(PackError, match=r"det.onnx is missing"):
        load_folder(gone)
    assert load_folder(built).model_id == PACK_ID  # the intact pack passes


def test_a_damaged_file_stops_the_model_loading(built: Path, tmp_path: Path) -> None:
    """resolve() reads only the manifest; the model refuses to load until the files match."""
    folder = copy_pack(built, tmp_path / "p")
    data = bytearray((folder / "rec.onnx").read_bytes())
    data[-1] ^= 0xFF
    (folder / "rec.onnx").write_bytes(bytes(data))
    pack = resolve(str(folder), tmp_path / "home")
    with pytest.raises(PackError, match="SHA-256"):
        PackFaceModel(pack, ModelOptions())


def test_wrong_embedding_size_is_refused(built: Path, tmp_path: Path) -> None:
    folder = copy_pack(built, tmp_path / "p")
    m = json.loads((folder / "manifest.json").read_text())
    m["embedder"]["embedding_size"] = 64  # the network gives 128
    write_manifest(folder, m)
    model = PackFaceModel(load_folder(folder), ModelOptions())
    pixels = np.asarray(grace_hopper())
    aligned = model.aligner.align(pixels, model.detector.detect(pixels)[0].box)
    with pytest.raises(PackError, match="returned 128 values per face; the manifest says "
                                        "embedding_size 64"):
        model.embedder.embed([aligned])


# ----------------------------------------------------------------------------- runtime


def test_similarity_transform_recovers_a_known_one() -> None:
    src = np.array([[10, 20], [50, 22], [30, 40], [15, 60], [45, 61]], float)
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -8.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ (scale * rot).T + shift
    m = similarity_transform(src, dst)
    assert np.allclose(m[:, :2], scale * rot, atol=1e-9) and np.allclose(m[:, 2], shift, atol=1e-9)


def test_warp_puts_the_landmarks_on_the_template() -> None:
    """A bright dot at each landmark lands on the template point in the chip."""
    img = np.zeros((300, 400, 3), np.uint8)
    marks = np.array([[150, 120], [230, 110], [195, 165], [165, 215], [235, 205]], float)
    for x, y in marks.astype(int):
        img[y - 2:y + 3, x - 2:x + 3] = 255
    template = np.array([[38.3, 51.7], [73.5, 51.5], [56.0, 71.7], [41.5, 92.4], [70.7, 92.2]])
    chip = warp(img, similarity_transform(marks, template), 112)
    for tx, ty in template:
        y, x = round(ty), round(tx)
        assert chip[y - 3:y + 4, x - 3:x + 4].max() > 100, (tx, ty)
    assert chip[5:25, 5:25].max() == 0  # nothing bright where no landmark maps


def test_detector_finds_nothing_on_a_blank_image_and_maps_letterboxed_boxes(
        built: Path, tmp_path: Path) -> None:
    model = PackFaceModel(load_folder(built), ModelOptions())
    assert model.detector.detect(np.full((120, 160, 3), 90, np.uint8)) == []
    fixed = copy_pack(built, tmp_path / "fixed")
    m = json.loads((fixed / "manifest.json").read_text())
    m["detector"]["input_size"] = [320, 320]
    write_manifest(fixed, m)
    boxed = PackFaceModel(load_folder(fixed), ModelOptions())
    pixels = np.asarray(astronaut())  # 512 x 512: scale 0.625 into 320 x 320
    (det,) = boxed.detector.detect(pixels)
    # The graph's box is at fixed fractions of the 320 px input, mapped back by 1 / 0.625.
    assert det.box.as_list() == [128, 77, 384, 435]


# ----------------------------------------------------------------------------- download once


class _Counting(http.server.SimpleHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def served(built: Path, tmp_path: Path) -> Iterator[tuple[str, str, list[str]]]:
    """A local HTTP server with the pack's zip: (URL, its SHA-256, the paths requested)."""
    root = tmp_path / "www"
    root.mkdir()
    sha = zip_pack(built, root / "tiny.zip")
    hits: list[str] = []

    class Handler(_Counting):
        def __init__(self, *a: object) -> None:
            self.hits = hits
            super().__init__(*a, directory=str(root))  # type: ignore[arg-type]

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/tiny.zip", sha, hits
    finally:
        server.shutdown()
        server.server_close()


def test_url_pack_is_downloaded_once_with_its_pin(served: tuple[str, str, list[str]],
                                                  tmp_path: Path) -> None:
    url, sha, hits = served
    home = tmp_path / "home"
    first = resolve(f"{url}#sha256={sha}", home)
    assert first.folder == (packs_dir(home) / PACK_ID).resolve()
    assert (first.folder / "rec.onnx").is_file() and hits == ["/tiny.zip"]
    second = resolve(f"{url}#sha256={sha}", home)
    assert second.folder == first.folder and hits == ["/tiny.zip"]  # not fetched again
    second.verify()  # the downloaded files match the manifest's pins
    assert sorted(p.name for p in packs_dir(home).iterdir()) == [PACK_ID]  # no leftovers


def test_url_pack_with_a_wrong_or_missing_pin_is_refused(served: tuple[str, str, list[str]],
                                                         tmp_path: Path) -> None:
    url, sha, hits = served
    home = tmp_path / "home"
    wrong = ("0" if sha[0] != "0" else "1") + sha[1:]
    with pytest.raises(PackError, match=r"its SHA-256 is .* the configuration pins"):
        resolve(f"{url}#sha256={wrong}", home)
    assert hits == ["/tiny.zip"] and list(packs_dir(home).iterdir()) == []  # nothing kept
    with pytest.raises(PackError, match="needs a pinned SHA-256"):
        resolve(url, home)
    with pytest.raises(PackError, match="must be http"):
        resolve(f"ftp://example.invalid/x.zip#sha256={sha}", home)


# ----------------------------------------------------------------------------- licences


def test_licence_is_shown_by_the_registry_the_cli_and_the_model_page(built: Path,
                                                                      tmp_path: Path) -> None:
    from faceledger.cli.main import app as cli

    home = tmp_path / "home"
    env = {"FACELEDGER_HOME": str(home), "FACELEDGER_MODEL_PACKS": json.dumps([str(built)])}
    res = CliRunner().invoke(cli, ["models"], env=env)
    assert res.exit_code == 0, res.output
    listed = json.loads(res.output)
    assert listed[PACK_ID]["licence"].startswith("test weights") and listed[PACK_ID]["dim"] == DIM
    assert "non-commercial research only" in listed[PACK_ID]["source"]
    assert listed[PACK_ID]["published_accuracy"].startswith("none: random projection")
    assert listed["dlib-resnet-v1"]["pack"] is None
    assert PACK_ID in available_models()  # registered in this process too
    added = CliRunner().invoke(cli, ["models", "add-pack", str(built), "--json"], env=env)
    assert added.exit_code == 0 and json.loads(added.output)["entry"] == str(built.resolve())

    from faceledger.server import create_app

    settings = Settings(home=home, workers=1, cookie_secure=False, model_packs=[str(built),
                        "https://example.invalid/other.zip#sha256=" + "a" * 64])
    core = Faceledger(settings)
    core.initialise("root", "root-password-1")
    core.close()
    with TestClient(create_app(settings, load_models=False), base_url="http://testserver") as c:
        c.post("/login", data={"name": "root", "password": "root-password-1"},
               headers={"accept": "text/html"})
        page = c.get("/model", headers={"accept": "text/html"}).text
    assert 'data-testid="model-packs"' in page and PACK_ID in page
    assert "Licence: test weights, made by the tests; non-commercial research only" in page
    assert "not downloaded yet" in page  # the URL pack: nothing fetched for the page


# ----------------------------------------------------------------------------- whole path


def _dataset(root: Path) -> Path:
    """Four "people" (the pack's detector sees one face per photo), three photos each."""
    import skimage.data

    people = {"astronaut": astronaut_face(), "grace": grace_hopper(),
              "cat": Image.fromarray(skimage.data.chelsea()),
              "coffee": Image.fromarray(skimage.data.coffee())}
    for name, img in people.items():
        (root / name).mkdir(parents=True)
        w, h = img.size
        (root / name / "a.jpg").write_bytes(encode(img))
        (root / name / "b.jpg").write_bytes(encode(img, quality=30))
        (root / name / "c.jpg").write_bytes(encode(img.resize((int(w * 0.7), int(h * 0.7)))))
    return root


def test_whole_path_with_a_pack_model(built: Path, tmp_path: Path) -> None:
    """Ingest, index, search and calibrate with FACELEDGER_MODEL=<pack id>; a dlib embedding is
    never compared with a pack embedding."""
    from faceledger.accounts import users as accounts

    settings = Settings(home=tmp_path / "home", workers=1, model=PACK_ID,
                        model_packs=[str(built)])
    register_packs(settings)
    app = Faceledger(settings)
    _, token = app.initialise("root")
    admin = app.authenticate(token)
    with app.db.write() as s:
        _, inv_token = accounts.create_user(s, "ivy", "investigator", actor=admin)
        add_collection(s, "gallery", "test data", "photos made by tests", actor=admin)
    investigator = app.authenticate(inv_token)
    try:
        gallery = _dataset(tmp_path / "people")
        summary = Ingest(app, admin).run([gallery / p / "a.jpg" for p in ("astronaut", "grace", "cat")],
                                         "gallery")
        assert (summary.added, summary.faces) == (3, 3)
        assert app.pipeline().model_id == PACK_ID
        assert app.indexes.get(PACK_ID, 1).count() == 3
        probe = (gallery / "grace" / "b.jpg").read_bytes()
        res = run_search(app, investigator, probe, SearchRequest(
            case_ref="CASE-1", purpose="criminal investigation", offence="robbery",
            legal_basis="test basis", top_k=5))
        import hashlib

        assert res.model_id == PACK_ID and len(res.candidates) == 3
        top = res.candidates[0]
        assert top.image_sha256 == hashlib.sha256((gallery / "grace" / "a.jpg").read_bytes()).hexdigest()
        assert top.similarity > res.candidates[1].similarity

        es = embed_dataset(gallery, walk_dataset(gallery), settings, workers=1)
        assert es.vectors.shape == (12, DIM) and bool(es.detected.all())
        cal = calibrate(es.subset(es.usable(False)), target_fmr=0.1, clamp=True)
        set_calibration(app, admin, PACK_ID, cal.threshold, cal.target_fmr, cal.gallery_size,
                        "tiny set", cal.details)
        card = models_overview(app, admin)["models"][PACK_ID]
        assert card["calibration"]["threshold"] == cal.threshold
        assert "licence: test weights" in card["source"]

        pack_emb = app.pipeline().process(probe).faces[0].embedding
        dlib = load_model("dlib-resnet-v1")
        pixels = np.asarray(grace_hopper())
        (det,) = dlib.detector.detect(pixels)
        dlib_emb = dlib.embedder.embed([dlib.aligner.align(pixels, det.box)])[0]
        with pytest.raises(ModelMismatchError, match="refusing to compare"):
            similarity(dlib_emb, pack_emb)
    finally:
        app.close()


def test_a_512_d_pack_can_be_ingested(tmp_path: Path) -> None:
    folder = build_pack(tmp_path / "wide", name="wide-arc", dim=512)
    settings = Settings(home=tmp_path / "home", workers=1, model="wide-arc-1.0",
                        model_packs=[str(folder)])
    register_packs(settings)
    app = Faceledger(settings)
    try:
        _, token = app.initialise("root")
        admin = app.authenticate(token)
        with app.db.write() as s:
            add_collection(s, "gallery", "test data", "photos made by tests", actor=admin)
        (tmp_path / "g").mkdir()
        (tmp_path / "g" / "grace.jpg").write_bytes(encode(grace_hopper()))
        summary = Ingest(app, admin).run([tmp_path / "g"], "gallery")
        assert summary.faces == 1 and app.indexes.get("wide-arc-1.0", 1).count() == 1
    finally:
        app.close()
