"""Where ingest reads from: files, folders (recursive) and zip archives, plus the optional
CSV/JSONL manifest that gives each file its provenance. Never the open web."""

from __future__ import annotations

import csv
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath, PureWindowsPath
from types import TracebackType
from urllib.parse import urlsplit

from faceledger.errors import ImageTooLargeError, ValidationError
from faceledger.faces.decode import IMAGE_SUFFIXES, SNIFF_BYTES, sniff_format

MANIFEST_FIELDS = ("path", "source_url", "page_url", "title", "captured_at")
# Longest accepted manifest field, in characters; a row with a longer one is refused.
FIELD_MAX_CHARS = {"path": 1024, "source_url": 2048, "page_url": 2048, "title": 500,
                   "captured_at": 64}
URL_FIELDS = ("source_url", "page_url")
# A cell a spreadsheet would run as a formula (CSV injection) when the data is exported.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Provenance:
    source_url: str | None = None
    page_url: str | None = None
    title: str | None = None
    captured_at: datetime | None = None


@dataclass(frozen=True)
class SourceItem:
    display: str  # shown to people and recorded: a path, or "archive.zip!member"
    key: str  # absolute path used to look the item up in a manifest
    fs_path: Path | None = None
    zip_path: Path | None = None
    member: str | None = None
    size: int = 0
    reject_reason: str | None = None  # set when the item is refused without reading it

    def read(self, max_bytes: int, archives: Archives | None = None) -> bytes:
        """The item's bytes; zip members through ``archives``, which keeps the archive open
        (without it the archive is opened for this one read)."""
        if self.size > max_bytes:
            raise ImageTooLargeError(f"file is {self.size} bytes, over the {max_bytes}-byte limit")
        if self.fs_path is not None:
            with self.fs_path.open("rb") as fh:
                data = fh.read(max_bytes + 1)
        else:
            assert self.zip_path is not None and self.member is not None
            arc = archives or Archives()
            try:
                with arc.open(self.zip_path).open(self.member) as fh:
                    data = fh.read(max_bytes + 1)
            finally:
                if archives is None:
                    arc.close()
        if len(data) > max_bytes:
            raise ImageTooLargeError(f"file is over the {max_bytes}-byte limit")
        return data


class Archives:
    """The zip archive being read, kept open: consecutive members of one archive are read
    without reopening it and re-reading its directory (which made big archives quadratic)."""

    def __init__(self) -> None:
        self._path: Path | None = None
        self._zf: zipfile.ZipFile | None = None

    def open(self, path: Path) -> zipfile.ZipFile:
        if self._zf is None or self._path != path:
            self.close()
            self._zf, self._path = zipfile.ZipFile(path), path
        return self._zf

    def close(self) -> None:
        if self._zf is not None:
            self._zf.close()
        self._zf = self._path = None

    def __enter__(self) -> Archives:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


@dataclass
class Manifest:
    """Provenance by absolute file path, and where each row came from (for warnings)."""

    provenance: dict[str, Provenance] = field(default_factory=dict)
    rows: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (where, path)
    refused: list[dict[str, str]] = field(default_factory=list)  # rows refused, with why
    refused_lines: list[int] = field(default_factory=list)

    def get(self, key: str) -> Provenance:
        return self.provenance.get(key, Provenance())

    def unmatched(self, keys: set[str]) -> list[dict[str, str]]:
        """Rows naming no file among ``keys``: typos, missing files, files not uploaded."""
        return [{"path": rel, "code": "manifest_unmatched",
                 "reason": f"{where}: {rel} matches no file in this ingest"}
                for key, (where, rel) in self.rows.items() if key not in keys]


def _parse_time(value: str, where: str) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"{where}: captured_at {value!r} is not ISO 8601") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _http_url(value: str) -> bool:
    """An absolute http(s) URL with a host and no spaces or control characters."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _outside(rel: str) -> bool:
    """A path that is absolute or climbs out of the manifest's folder."""
    posix = rel.replace("\\", "/")
    return (PurePosixPath(posix).is_absolute() or bool(PureWindowsPath(rel).drive)
            or ".." in PurePosixPath(posix).parts)


def row_problem(rec: dict[str, str]) -> str | None:
    """Why a manifest row is refused (None if it is fine): an over-long field, a URL that is not
    http(s), a path or title a spreadsheet would run as a formula, a path outside the folder."""
    for name in MANIFEST_FIELDS:
        value = rec.get(name, "")
        limit = FIELD_MAX_CHARS[name]
        if len(value) > limit:
            return f"{name} is {len(value)} characters, over the {limit}-character limit"
        if name in URL_FIELDS and value.strip() and not _http_url(value.strip()):
            return f"{name} must be an http(s) URL"
        first = value.lstrip(" ")[:1]
        if name in ("path", "title") and first and first in FORMULA_START:
            shown = {"\t": "a tab", "\r": "a carriage return"}.get(first, first)
            return f"{name} looks like a spreadsheet formula (starts with {shown})"
    if _outside(rec.get("path", "").strip()):
        return "path must be relative to the manifest's folder (no absolute path, no '..')"
    return None


def _manifest_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    rows: list[tuple[int, dict[str, str]]] = []
    text = path.read_text("utf-8-sig")
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"{path.name} line {n}: not JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise ValidationError(f"{path.name} line {n}: expected a JSON object")
            rows.append((n, {k: str(v) for k, v in obj.items() if v is not None}))
    elif path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or "path" not in reader.fieldnames:
            raise ValidationError(f"{path.name}: CSV manifest needs a header with a 'path' column")
        for n, rec in enumerate(reader, 2):
            rows.append((n, {k: v or "" for k, v in rec.items() if k}))
    else:
        raise ValidationError(f"manifest {path.name}: use a .csv or .jsonl file")
    return rows


def load_manifest(path: Path) -> Manifest:
    """Map absolute file paths to provenance. A malformed manifest (unknown field, empty path,
    bad date) is refused whole; an unsafe row (``row_problem``) is left out and reported in
    ``refused`` with its line number."""
    if not path.is_file():
        raise ValidationError(f"manifest {path} does not exist")
    base = path.parent.resolve()
    out = Manifest()
    for n, rec in _manifest_rows(path):
        where = f"{path.name} line {n}"
        unknown = set(rec) - set(MANIFEST_FIELDS)
        if unknown:
            raise ValidationError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
                                  f"allowed: {', '.join(MANIFEST_FIELDS)}")
        rel = rec.get("path", "").strip()
        if not rel:
            raise ValidationError(f"{where}: 'path' is empty")
        problem = row_problem(rec)
        if problem:
            out.refused.append({"path": f"(line {n})" if problem.startswith("path") else rel,
                                "code": "manifest_refused",
                                "reason": f"{where}: {problem}; row refused"})
            out.refused_lines.append(n)
            continue
        key = str((base / rel).resolve())
        out.rows[key] = (where, rel)
        out.provenance[key] = Provenance(
            source_url=rec.get("source_url", "").strip() or None,
            page_url=rec.get("page_url", "").strip() or None,
            title=rec.get("title") or None,
            captured_at=_parse_time(rec.get("captured_at", ""), where),
        )
    return out


def _not_image(name: str, head: bytes) -> str | None:
    """Why a file whose name is not a known image type is refused; None if its content is one."""
    if sniff_format(head) is not None:
        return None
    suffix = Path(name).suffix or "no extension"
    return f"not an image ({suffix}; the content is not JPEG, PNG, GIF, BMP, TIFF, WebP or Netpbm)"


def _zip_items(zpath: Path, max_members: int) -> Iterator[SourceItem]:
    try:
        zf = zipfile.ZipFile(zpath)
    except (zipfile.BadZipFile, OSError) as exc:
        yield SourceItem(str(zpath), str(zpath), fs_path=zpath, reject_reason=f"bad zip: {exc}")
        return
    with zf:
        infos = zf.infolist()
        if len(infos) > max_members:
            raise ValidationError(
                f"{zpath.name} holds {len(infos)} members; an archive may hold at most "
                f"{max_members} (FACELEDGER_MAX_ZIP_MEMBERS): split it into smaller archives")
        for info in sorted(infos, key=lambda i: i.filename):
            if info.is_dir():
                continue
            name = info.filename
            leaf = name.rsplit("/", 1)[-1]
            if leaf.startswith(".") or name.startswith("__MACOSX/"):
                continue
            display = f"{zpath}!{name}"
            key = str(zpath / name)
            reason = None
            if info.flag_bits & 0x1:
                reason = "encrypted zip member"
            elif Path(leaf).suffix.lower() not in IMAGE_SUFFIXES:
                try:
                    with zf.open(info) as fh:
                        head = fh.read(SNIFF_BYTES)
                except (zipfile.BadZipFile, OSError, RuntimeError, EOFError) as exc:
                    reason = f"unreadable zip member: {exc}"
                else:
                    reason = _not_image(leaf, head)
            yield SourceItem(display, key, zip_path=zpath, member=name, size=info.file_size,
                             reject_reason=reason)


def _file_item(path: Path, max_members: int) -> Iterator[SourceItem]:
    if path.suffix.lower() == ".zip":
        yield from _zip_items(path, max_members)
        return
    reason = None
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        try:
            with path.open("rb") as fh:
                head = fh.read(SNIFF_BYTES)
        except OSError as exc:
            head, reason = b"", f"cannot read file: {exc}"
        reason = reason or _not_image(path.name, head)
    yield SourceItem(str(path), str(path), fs_path=path, size=path.stat().st_size,
                     reject_reason=reason)


def check_paths(paths: list[Path]) -> list[Path]:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ValidationError(f"no such file or folder: {', '.join(missing)}")
    return [p.resolve() for p in paths]


def iter_sources(paths: list[Path], skip: set[Path] | None = None, *,
                 max_zip_members: int = 10_000, max_files: int = 100_000
                 ) -> Iterator[SourceItem]:
    """Every item under ``paths``, in a stable order (so a re-run walks the same way). An archive
    with more than ``max_zip_members`` members, or more than ``max_files`` items in all, is
    refused (``ValidationError``) as soon as it is seen."""
    for n, item in enumerate(_walk(paths, skip or set(), max_zip_members), 1):
        if n > max_files:
            raise ValidationError(f"more than {max_files} files in one ingest "
                                  "(FACELEDGER_MAX_INGEST_FILES): ingest them in parts")
        yield item


def _walk(paths: list[Path], skip: set[Path], max_members: int) -> Iterator[SourceItem]:
    for root in check_paths(paths):
        if root.is_dir():
            for p in sorted(root.rglob("*")):
                rel = p.relative_to(root)
                if any(part.startswith(".") for part in rel.parts) or not p.is_file():
                    continue
                if p in skip:
                    continue
                yield from _file_item(p, max_members)
        elif root not in skip:
            yield from _file_item(root, max_members)
