"""Content-addressed files in the data home: original images and face thumbnails.

Writes are atomic (temp file + rename) and idempotent (the name is the content hash), so an
interrupted ingest leaves nothing half-written and a re-run rewrites the same names."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from faceledger.errors import NotFoundError

_EXT = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "GIF": ".gif", "BMP": ".bmp",
        "TIFF": ".tif", "WEBP": ".webp", "PPM": ".pnm"}


PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
HOME_FOLDERS = frozenset({"images", "thumbs", "probes", "index", "keys", "uploads"})


def private_umask() -> None:
    """From here on this process creates folders 0700 and files 0600 (the database and its
    -wal/-shm, images, thumbnails, indexes, keys): nobody but the data home's owner reads them."""
    os.umask(0o077)


def secure_home(home: Path) -> list[str]:
    """Repair looser modes in a data home: the home and its folders (images, thumbs, probes,
    index, keys, uploads, and every folder in them) to 0700; the files at its top (database,
    -wal, -shm, initial credentials) and under keys/ and index/ to 0600. Images and thumbnails
    are not walked one by one (fast start-ups): their folders are closed, and the home at 0700
    already shuts every other user out. Returns what was repaired ("path old -> new")."""
    repaired: list[str] = []

    def fix(path: Path, mode: int) -> None:
        try:
            st = path.lstat()
        except OSError:
            return
        if not stat.S_ISLNK(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(path, mode)
            repaired.append(f"{path} {oct(stat.S_IMODE(st.st_mode))} -> {oct(mode)}")

    if not (home / "faceledger.db").is_file() and not (home / "index").is_dir():
        return repaired  # not (yet) a data home: leave someone else's folder alone
    fix(home, PRIVATE_DIR)
    for entry in os.scandir(home):
        if entry.is_dir(follow_symlinks=False) and entry.name in HOME_FOLDERS:
            for root, _dirs, files in os.walk(entry.path):
                fix(Path(root), PRIVATE_DIR)
                if entry.name in ("keys", "index"):
                    for f in files:
                        fix(Path(root) / f, PRIVATE_FILE)
        elif entry.is_file(follow_symlinks=False):
            fix(Path(entry.path), PRIVATE_FILE)
    return repaired


def atomic_write(path: Path, data: bytes, durable: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
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
