"""Uploaded files, with caps: one photo read into memory (a probe, a subject's photo) or a whole
upload staged in the data home before an ingest job reads it. The caps come from the settings;
a file over its cap is refused with ``image_too_large`` (413) however it arrives."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from fastapi import UploadFile

from faceledger.errors import ImageTooLargeError, ValidationError

if TYPE_CHECKING:
    from faceledger.core import Faceledger

CHUNK = 1 << 20
MANIFEST_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".json")
MANIFEST_MAX_BYTES = 50 * 1024 * 1024


def capped(data: bytes, limit: int, what: str) -> bytes:
    """``data`` (read with ``limit + 1`` bytes at most) unless it went over ``limit``."""
    if len(data) > limit:
        raise ImageTooLargeError(f"{what} is over the {limit}-byte limit")
    return data


async def read_capped(upload: UploadFile, limit: int, what: str = "the probe photo") -> bytes:
    """An API upload's bytes, at most ``limit`` of them (read without blocking the loop)."""
    return capped(await upload.read(limit + 1), limit, what)


def read_form_file(upload: UploadFile | None, limit: int, what: str, missing: str) -> bytes:
    """A web form's file field: chosen (else ``missing``), not empty, at most ``limit`` bytes.
    For the pages' plain (thread pool) handlers."""
    if upload is None or not upload.filename:
        raise ValidationError(missing)
    data = capped(upload.file.read(limit + 1), limit, what)
    if not data:
        raise ValidationError(f"{what} is empty")
    return data


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


def _free_path(dest: Path) -> Path:
    n = 1
    while dest.exists():
        dest = dest.with_name(f"{dest.stem}-{n}{dest.suffix}")
        n += 1
    return dest


async def _save_all(core: Faceledger, files: list[UploadFile], manifest: UploadFile | None,
                    files_dir: Path) -> Path | None:
    settings = core.settings
    for f in files:
        name = safe_name(f.filename)
        if name is None:
            continue
        # zip archives may be larger than a single photo
        cap = settings.max_request_bytes if name.lower().endswith(".zip") \
            else settings.max_upload_bytes
        await _save(f, _free_path(files_dir / name), cap)
    if manifest is None or not manifest.filename:
        return None
    suffix = PurePosixPath(manifest.filename).suffix.lower()
    if suffix not in MANIFEST_SUFFIXES:
        raise ValidationError("the manifest must be a .csv or .jsonl file")
    manifest_path = files_dir / f"manifest{suffix}"
    await _save(manifest, manifest_path, MANIFEST_MAX_BYTES)
    return manifest_path


async def stage_upload(core: Faceledger, files: list[UploadFile], manifest: UploadFile | None
                       ) -> tuple[Path, Path | None]:
    """Save the upload under ``<home>/uploads/<random>/files/``; return (folder, manifest path).
    Nothing stays behind when it is refused."""
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
        manifest_path = await _save_all(core, real, manifest, files_dir)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    if not files_dir.exists():
        shutil.rmtree(root, ignore_errors=True)
        raise ValidationError("no usable files in the upload")
    return files_dir, manifest_path


def discard(staged: Path) -> None:
    """Remove a staged upload that no job took over, with its upload folder."""
    shutil.rmtree(staged.parent if staged.name == "files" else staged, ignore_errors=True)
