"""Content-addressed files in the data home: original images and face thumbnails.

Writes are atomic (temp file + rename) and idempotent (the name is the content hash), so an
interrupted ingest leaves nothing half-written and a re-run rewrites the same names."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from faceledger.errors import NotFoundError

_EXT = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "GIF": ".gif", "BMP": ".bmp",
        "TIFF": ".tif", "WEBP": ".webp", "PPM": ".pnm"}


def atomic_write(path: Path, data: bytes, durable: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FileStore:
    def __init__(self, home: Path) -> None:
        self.home = home

    def image_relpath(self, sha256: str, fmt: str) -> str:
        return f"images/{sha256[:2]}/{sha256}{_EXT.get(fmt, '.bin')}"

    def probe_relpath(self, sha256: str, fmt: str) -> str:
        return f"probes/{sha256[:2]}/{sha256}{_EXT.get(fmt, '.bin')}"

    def thumb_relpath(self, sha256: str, face_index: int) -> str:
        return f"thumbs/{sha256[:2]}/{sha256}_{face_index}.jpg"

    def put(self, relpath: str, data: bytes, durable: bool = True) -> Path:
        """Write once (atomically). With ``durable=False`` the caller calls ``sync()`` before
        committing rows that point at the file (one flush per batch, not one per file)."""
        path = self.home / relpath
        if not path.exists() or path.stat().st_size != len(data):
            atomic_write(path, data, durable)
        return path

    @staticmethod
    def sync() -> None:
        os.sync()

    def path(self, relpath: str) -> Path:
        path = (self.home / relpath).resolve()
        if not path.is_relative_to(self.home.resolve()):
            raise NotFoundError("file outside the data home")
        return path

    def read(self, relpath: str) -> bytes:
        path = self.path(relpath)
        if not path.is_file():
            raise NotFoundError(f"stored file {relpath} is missing")
        return path.read_bytes()

    def delete(self, relpath: str) -> None:
        self.path(relpath).unlink(missing_ok=True)
