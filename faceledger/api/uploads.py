"""Staging uploaded files in the data home, with caps, before an ingest job reads them."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path, PurePosixPath

from fastapi import UploadFile

from faceledger.core import Faceledger
from faceledger.errors import ImageTooLargeError, ValidationError

CHUNK = 1 << 20


def safe_name(filename: str | None) -> str | None:
    """A relative path without traversal, hidden parts or absolute roots; None to skip."""
    if not filename:
        return None
    parts = [p for p in PurePosixPath(filename.replace("\\", "/")).parts
             if p not in ("", ".", "..", "/")]
    if not parts or any(p.startswith(".") for p in parts):
        return None
    return "/".join(parts[-4:])


async def _save(upload: UploadFile, dest: Path, max_bytes: int) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with dest.open("wb") as fh:
        while chunk := await upload.read(CHUNK):
            written += len(chunk)
            if written > max_bytes:
                raise ImageTooLargeError(
                    f"{upload.filename}: over the {max_bytes}-byte limit per file")
            fh.write(chunk)


async def stage_upload(core: Faceledger, files: list[UploadFile], manifest: UploadFile | None
                       ) -> tuple[Path, Path | None]:
    """Save the upload under ``<home>/uploads/<random>/``; return (folder, manifest path)."""
    settings = core.settings
    real = [f for f in files if f.filename]
    if not real:
        raise ValidationError("no files uploaded")
    if len(real) > settings.max_upload_files:
        raise ValidationError(f"{len(real)} files in one upload; the limit is "
                              f"{settings.max_upload_files}")
    root = settings.home / "uploads" / secrets.token_hex(8)
    files_dir = root / "files"
    try:
        for f in real:
            name = safe_name(f.filename)
            if name is None:
                continue
            dest = files_dir / name
            n = 1
            while dest.exists():
                dest = dest.with_name(f"{dest.stem}-{n}{dest.suffix}")
                n += 1
            # zip archives may be larger than a single photo
            cap = settings.max_request_bytes if name.lower().endswith(".zip") \
                else settings.max_upload_bytes
            await _save(f, dest, cap)
        manifest_path = None
        if manifest is not None and manifest.filename:
            suffix = PurePosixPath(manifest.filename).suffix.lower()
            if suffix not in (".csv", ".jsonl", ".ndjson", ".json"):
                raise ValidationError("the manifest must be a .csv or .jsonl file")
            manifest_path = files_dir / f"manifest{suffix}"
            await _save(manifest, manifest_path, 50 * 1024 * 1024)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    if not files_dir.exists():
        shutil.rmtree(root, ignore_errors=True)
        raise ValidationError("no usable files in the upload")
    return files_dir, manifest_path
