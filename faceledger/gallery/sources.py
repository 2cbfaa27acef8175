"""Where ingest reads from: files, folders (recursive) and zip archives, plus the optional
CSV/JSONL manifest that gives each file its provenance. Never the open web."""

from __future__ import annotations

import csv
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from faceledger.errors import ImageTooLargeError, ValidationError
from faceledger.faces.decode import IMAGE_SUFFIXES, SNIFF_BYTES, sniff_format

MANIFEST_FIELDS = ("path", "source_url", "page_url", "title", "captured_at")


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

    def read(self, max_bytes: int) -> bytes:
        if self.size > max_bytes:
            raise ImageTooLargeError(f"file is {self.size} bytes, over the {max_bytes}-byte limit")
        if self.fs_path is not None:
            with self.fs_path.open("rb") as fh:
                data = fh.read(max_bytes + 1)
        else:
            assert self.zip_path is not None and self.member is not None
            with zipfile.ZipFile(self.zip_path) as zf, zf.open(self.member) as fh:
                data = fh.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ImageTooLargeError(f"file is over the {max_bytes}-byte limit")
        return data


@dataclass
class Manifest:
    """Provenance by absolute file path, and where each row came from (for warnings)."""

    provenance: dict[str, Provenance] = field(default_factory=dict)
    rows: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (where, path)

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


def load_manifest(path: Path) -> Manifest:
    """Map absolute file paths to provenance. Refuses the whole manifest on any bad row."""
    if not path.is_file():
        raise ValidationError(f"manifest {path} does not exist")
    base = path.parent.resolve()
    rows: list[tuple[str, dict[str, str]]] = []
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
            rows.append((f"{path.name} line {n}", {k: str(v) for k, v in obj.items()
                                                    if v is not None}))
    elif path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or "path" not in reader.fieldnames:
            raise ValidationError(f"{path.name}: CSV manifest needs a header with a 'path' column")
        for n, rec in enumerate(reader, 2):
            rows.append((f"{path.name} line {n}", {k: v or "" for k, v in rec.items() if k}))
    else:
        raise ValidationError(f"manifest {path.name}: use a .csv or .jsonl file")
    out = Manifest()
    for where, rec in rows:
        unknown = set(rec) - set(MANIFEST_FIELDS)
        if unknown:
            raise ValidationError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
                                  f"allowed: {', '.join(MANIFEST_FIELDS)}")
        rel = rec.get("path", "").strip()
        if not rel:
            raise ValidationError(f"{where}: 'path' is empty")
        key = str((base / rel).resolve())
        out.rows[key] = (where, rel)
        out.provenance[key] = Provenance(
            source_url=rec.get("source_url") or None,
            page_url=rec.get("page_url") or None,
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


def _zip_items(zpath: Path) -> Iterator[SourceItem]:
    try:
        zf = zipfile.ZipFile(zpath)
    except (zipfile.BadZipFile, OSError) as exc:
        yield SourceItem(str(zpath), str(zpath), fs_path=zpath, reject_reason=f"bad zip: {exc}")
        return
    with zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
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


def _file_item(path: Path) -> Iterator[SourceItem]:
    if path.suffix.lower() == ".zip":
        yield from _zip_items(path)
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


def iter_sources(paths: list[Path], skip: set[Path] | None = None) -> Iterator[SourceItem]:
    """Every item under ``paths``, in a stable order (so a re-run walks the same way)."""
    skip = skip or set()
    for root in check_paths(paths):
        if root.is_dir():
            for p in sorted(root.rglob("*")):
                rel = p.relative_to(root)
                if any(part.startswith(".") for part in rel.parts) or not p.is_file():
                    continue
                if p in skip:
                    continue
                yield from _file_item(p)
        elif root not in skip:
            yield from _file_item(root)
