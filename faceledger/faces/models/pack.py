"""Model packs: an ONNX detector and embedder in a folder, described by ``manifest.json``.

A pack is loaded from a local folder or downloaded once, as a zip archive whose SHA-256 is
pinned (``https://host/pack.zip#sha256=<64 hex>``), into ``<home>/models/packs/<name>-<version>/``.
Nothing here runs at import time. The manifest (``PackManifest``) states everything the runtime
needs and everything an operator must know before using the model::

    {"format": "faceledger-model-pack/1", "name": "arcface-r50", "version": "1.0",
     "licence": "InsightFace pretrained weights: non-commercial research only",
     "published_accuracy": "LFW 99.8% (InsightFace)",
     "files": [{"path": "det.onnx", "sha256": "<64 hex>", "bytes": 123}, ...],
     "detector": {"file": "det.onnx", "signature": "boxes_landmarks_v1",
                  "input_size": [640, 640], "mean": [127.5, 127.5, 127.5],
                  "std": [128, 128, 128], "score_threshold": 0.5},
     "embedder": {"file": "rec.onnx", "signature": "embedding_v1", "input_size": 112,
                  "mean": [127.5, 127.5, 127.5], "std": [127.5, 127.5, 127.5],
                  "embedding_size": 512},
     "alignment": {"template": [[38.2946, 51.6963], ...five points...], "chip_size": 112}}

The signatures (``onnx_pack.py`` runs them):

* ``boxes_landmarks_v1`` (detector): one input, float32 NCHW, the image letterboxed into
  ``input_size`` (top-left, zero padding; ``null``: the image at its own size), channels in
  ``channels`` order, ``(pixel - mean) / std``; one output of shape ``(N, 15)`` or
  ``(1, N, 15)``: ``x1, y1, x2, y2, score`` then five landmarks ``x, y`` (left eye, right eye,
  nose, left and right mouth corner, as seen in the image) in input pixels.
* ``embedding_v1`` (embedder): one input, float32 NCHW ``(N, 3, s, s)`` with ``s`` =
  ``alignment.chip_size``, the aligned chip normalised the same way; one output ``(N, D)``
  with ``D`` = ``embedding_size``; faceledger L2-normalises it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from faceledger.errors import ConfigError

FORMAT = "faceledger-model-pack/1"
MANIFEST = "manifest.json"
SHA_PIN = re.compile(r"^[0-9a-f]{64}$")
MAX_DOWNLOAD_BYTES = 4 << 30
# ArcFace's 112x112 template (InsightFace): left eye, right eye, nose, mouth left, mouth right.
ARCFACE_112 = ((38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366),
               (41.5493, 92.3655), (70.7299, 92.2041))


class PackError(ConfigError):
    """A pack that cannot be used: bad manifest, missing file, wrong checksum or size."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Triple = tuple[float, float, float]


class PackFile(_Strict):
    path: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # flat: no folders
    sha256: str = Field(pattern=SHA_PIN.pattern)
    bytes: int = Field(gt=0)


class DetectorSpec(_Strict):
    file: str
    signature: Literal["boxes_landmarks_v1"]
    input_size: tuple[int, int] | None = None  # (width, height); None: the image's own size
    channels: Literal["RGB", "BGR"] = "RGB"
    mean: Triple = (127.5, 127.5, 127.5)
    std: Triple = (128.0, 128.0, 128.0)
    score_threshold: float = Field(default=0.5, ge=0, le=1)
    nms_iou: float = Field(default=0.4, gt=0, le=1)
    max_side: int = Field(default=1280, ge=32)  # dynamic input: longest side fed to the net


class EmbedderSpec(_Strict):
    file: str
    signature: Literal["embedding_v1"]
    channels: Literal["RGB", "BGR"] = "RGB"
    mean: Triple = (127.5, 127.5, 127.5)
    std: Triple = (127.5, 127.5, 127.5)
    embedding_size: int = Field(ge=2, le=4096)


class AlignmentSpec(_Strict):
    chip_size: int = Field(default=112, ge=16, le=512)
    template: tuple[tuple[float, float], ...] = ARCFACE_112

    @model_validator(mode="after")
    def _inside(self) -> AlignmentSpec:
        if len(self.template) != 5:
            raise ValueError("alignment.template needs exactly 5 points")
        if any(not (0 <= c <= self.chip_size) for p in self.template for c in p):
            raise ValueError(f"alignment.template points must lie inside the {self.chip_size} px chip")
        return self


class PackManifest(_Strict):
    format: Literal["faceledger-model-pack/1"]
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,47}$")
    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,23}$")
    licence: str = Field(min_length=3)
    licence_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    published_accuracy: str = Field(min_length=3)
    description: str = ""
    files: tuple[PackFile, ...] = Field(min_length=1)
    detector: DetectorSpec
    embedder: EmbedderSpec
    alignment: AlignmentSpec = AlignmentSpec()

    @field_validator("files")
    @classmethod
    def _unique(cls, files: tuple[PackFile, ...]) -> tuple[PackFile, ...]:
        if len({f.path for f in files}) != len(files):
            raise ValueError("a file is listed twice")
        return files

    @model_validator(mode="after")
    def _listed(self) -> PackManifest:
        listed = {f.path for f in self.files}
        for role, name in (("detector", self.detector.file), ("embedder", self.embedder.file)):
            if name not in listed:
                raise ValueError(f"{role}.file {name!r} is not in files (each needs its SHA-256)")
        return self

    @property
    def model_id(self) -> str:
        return f"{self.name}-{self.version}"


def parse_manifest(text: str, where: str = MANIFEST) -> PackManifest:
    """The manifest, or a PackError naming every problem in plain words."""
    try:
        return PackManifest.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise PackError(f"{where} is not JSON: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'manifest'}: {e['msg']}"
                             for e in exc.errors())
        raise PackError(f"{where} is not a valid model pack manifest: {problems}") from None


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class LoadedPack:
    """A manifest and the folder it describes (files checked by ``verify``)."""

    def __init__(self, folder: Path, manifest: PackManifest) -> None:
        self.folder, self.manifest = folder, manifest
        self._verified = False

    @property
    def model_id(self) -> str:
        return self.manifest.model_id

    def path(self, name: str) -> Path:
        return self.folder / name

    def verify(self) -> None:
        """Every listed file is there with its stated size and SHA-256 (checked once)."""
        if self._verified:
            return
        for f in self.manifest.files:
            p = self.folder / f.path
            if not p.is_file():
                raise PackError(f"model pack {self.model_id}: file {f.path} is missing in {self.folder}")
            size = p.stat().st_size
            if size != f.bytes:
                raise PackError(f"model pack {self.model_id}: {f.path} has {size:,} bytes, "
                                f"the manifest says {f.bytes:,}")
            got = file_sha256(p)
            if got != f.sha256:
                raise PackError(f"model pack {self.model_id}: {f.path} has SHA-256 {got}, the "
                                f"manifest pins {f.sha256}; the file is damaged or was replaced")
        self._verified = True

    def summary(self) -> dict[str, object]:
        m = self.manifest
        return {"model_id": m.model_id, "name": m.name, "version": m.version,
                "licence": m.licence, "licence_url": m.licence_url,
                "published_accuracy": m.published_accuracy, "folder": str(self.folder),
                "embedding_size": m.embedder.embedding_size,
                "chip_size": m.alignment.chip_size, "detector": m.detector.signature}


def load_folder(folder: Path, verify: bool = True) -> LoadedPack:
    folder = Path(folder).expanduser()
    mpath = folder / MANIFEST
    if not mpath.is_file():
        raise PackError(f"{folder} is not a model pack: it has no {MANIFEST}")
    pack = LoadedPack(folder.resolve(), parse_manifest(mpath.read_text("utf-8"), str(mpath)))
    if verify:
        pack.verify()
    return pack


# ----------------------------------------------------------------------------- download once


def split_pin(entry: str) -> tuple[str, str | None]:
    """``url#sha256=<hex>`` -> (url, hex); the pin is None when absent."""
    url, _, frag = entry.partition("#")
    pin = frag[len("sha256="):].lower() if frag.startswith("sha256=") else None
    return url, pin


def packs_dir(home: Path) -> Path:
    return Path(home) / "models" / "packs"


def _downloaded(root: Path, sha: str) -> Path | None:
    if not root.is_dir():
        return None
    for marker in root.glob("*/.archive-sha256"):
        if marker.read_text("ascii").strip() == sha:
            return marker.parent
    return None


def _fetch(url: str, sha: str, into: Path) -> Path:
    """Download ``url`` into a temporary file in ``into``; refuse it unless its SHA-256 is ``sha``."""
    fd, tmp = tempfile.mkstemp(prefix=".download-", suffix=".zip", dir=into)
    h, total = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                total += len(chunk)
                if total > MAX_DOWNLOAD_BYTES:
                    raise PackError(f"{url} is larger than {MAX_DOWNLOAD_BYTES:,} bytes")
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != sha:
            raise PackError(f"refusing the model pack from {url}: its SHA-256 is {h.hexdigest()}, "
                            f"the configuration pins {sha}")
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp)


def _extract(archive: Path, into: Path) -> Path:
    """Unpack a zip (flat, or one top folder) into a fresh folder; no links, no escapes."""
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=into))
    with zipfile.ZipFile(archive) as zf:
        names = [i for i in zf.infolist() if not i.is_dir()]
        tops = {n.filename.split("/")[0] for n in names}
        strip = len(tops) == 1 and all("/" in n.filename for n in names)
        for info in names:
            rel = info.filename.split("/", 1)[1] if strip else info.filename
            if "/" in rel or rel.startswith(".") or (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise PackError(f"model pack archive member {info.filename!r} is not a plain top-level file")
            with zf.open(info) as src, (staging / rel).open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    return staging


def download_pack(url: str, sha256: str, home: Path) -> LoadedPack:
    """The pack at ``url`` (a zip whose SHA-256 is ``sha256``), fetched once into
    ``<home>/models/packs/<name>-<version>/``; later calls find it there and fetch nothing."""
    sha = sha256.lower()
    if not SHA_PIN.match(sha):
        raise PackError("a model pack URL needs a pinned SHA-256 (64 hex digits): "
                        "add #sha256=<hex> to the URL or pass --sha256")
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise PackError(f"model pack URLs must be http(s): {url}")
    root = packs_dir(home)
    found = _downloaded(root, sha)
    if found is not None:  # fetched before: its files are checked when the model loads
        return load_folder(found, verify=False)
    root.mkdir(parents=True, exist_ok=True)
    archive = _fetch(url, sha, root)
    staging: Path | None = None
    try:
        staging = _extract(archive, root)
        pack = load_folder(staging)  # checks the manifest and every file's SHA-256
        (staging / ".archive-sha256").write_text(sha + "\n", "ascii")
        target = root / pack.model_id
        if target.exists():
            raise PackError(f"{target} already holds a different download of {pack.model_id}; "
                            "remove it to replace it")
        os.replace(staging, target)
        staging = None
        return LoadedPack(target.resolve(), pack.manifest)
    finally:
        archive.unlink(missing_ok=True)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def resolve(entry: str, home: Path, sha256: str | None = None) -> LoadedPack:
    """A ``model_packs`` entry: a folder, or an http(s) URL with ``#sha256=`` (or ``sha256``).
    The files' checksums are checked when the model loads (``LoadedPack.verify``)."""
    if "://" in entry:
        url, pin = split_pin(entry)
        return download_pack(url, sha256 or pin or "", home)
    return load_folder(Path(entry), verify=False)


def describe(entries: list[str], home: Path) -> list[dict[str, object]]:
    """What each ``model_packs`` entry holds, without downloading or hashing anything: the
    manifest's summary, or ``problem`` (not downloaded yet, unreadable, invalid)."""
    out: list[dict[str, object]] = []
    for entry in entries:
        shown, folder = split_pin(entry)[0], Path(entry)
        try:
            if "://" in entry:
                pin = split_pin(entry)[1]
                found = _downloaded(packs_dir(home), pin) if pin else None
                if found is None:
                    out.append({"entry": shown, "problem": "not downloaded yet (it is fetched "
                                "when the model first loads, or by `faceledger models add-pack`)"})
                    continue
                folder = found
            out.append({"entry": shown, **load_folder(folder, verify=False).summary()})
        except (PackError, OSError) as exc:
            out.append({"entry": shown, "problem": str(exc)})
    return out
