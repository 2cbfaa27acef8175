"""Distractors for 1:N identification: a folder of faces (e.g. LFW, or the operator's own
gallery) added to every gallery as non-mates, so rank-1 and FNIR at FPIR are measured at a
realistic gallery size; and SHA-256 digests to flag byte-identical probe/gallery pairs.

A distractor folder is *labelled* when every image sits in a sub-folder directly under it (one
sub-folder per identity, like LFW): identities named like a dataset identity are then left out
(same name, presumably the same person). Otherwise every image is its own identity. One face per
image is used: the one nearest the centre, as the embedding cache records it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from faceledger.errors import ValidationError
from faceledger.faces.decode import is_image_file

if TYPE_CHECKING:
    from faceledger.eval.embedset import EmbedSet


@dataclass(frozen=True)
class DistractorFiles:
    root: Path
    paths: list[str]  # relative to root, sorted, after exclusion and sampling
    labelled: bool
    found: int  # images in the folder
    excluded_identities: int
    excluded_images: int


def walk_images(root: Path) -> tuple[list[str], bool]:
    """Every image under ``root`` (recursively) and whether the folder is labelled by sub-folder."""
    if not root.is_dir():
        raise ValidationError(f"distractor folder {root} does not exist or is not a folder")
    out = sorted(f.relative_to(root).as_posix() for f in root.rglob("*")
                 if f.is_file() and not any(part.startswith(".") for part in
                                            f.relative_to(root).parts) and is_image_file(f))
    if not out:
        raise ValidationError(f"no images found in the distractor folder {root}")
    return out, all(p.count("/") == 1 for p in out)


def identity(rel: str, labelled: bool) -> str:
    return rel.split("/", 1)[0] if labelled else rel


def select(root: Path, dataset_identities: set[str], *, limit: int | None = None,
           seed: int = 0) -> DistractorFiles:
    """The distractor images to embed: those of identities not named like a dataset identity
    (labelled folders only), then a seeded random ``limit`` of them."""
    paths, labelled = walk_images(root)
    found = len(paths)
    names: set[str] = set()
    if labelled:
        names = {identity(p, True) for p in paths} & dataset_identities
        paths = [p for p in paths if identity(p, True) not in names]
    excluded = found - len(paths)
    if limit is not None and len(paths) > limit:
        pick = np.random.default_rng(seed).permutation(len(paths))[:limit]
        paths = sorted(paths[i] for i in pick)
    return DistractorFiles(root, paths, labelled, found, len(names), excluded)


def sha256_files(root: Path, rel: list[str]) -> list[str]:
    """SHA-256 of each file ("" where it cannot be read)."""
    out = []
    for p in rel:
        try:
            out.append(hashlib.sha256((root / p).read_bytes()).hexdigest())
        except OSError:
            out.append("")
    return out


def prepare(es: EmbedSet, files: DistractorFiles,
            dataset_digests: list[str]) -> tuple[EmbedSet, dict[str, Any]]:
    """The distractor faces to enrol: those with a detected face, minus files byte-identical to
    a dataset image (the same photo, so the same person) or to an earlier distractor. Their
    identities are set (one per image unless labelled); returns them and what was left out."""
    digests = sha256_files(es.root, es.paths)
    dataset = set(dataset_digests) - {""}
    keep = es.usable(False)
    no_face = int((~keep).sum())
    seen: set[str] = set()
    same = dup = 0
    for i, d in enumerate(digests):
        if not keep[i] or not d:
            continue
        if d in dataset:
            keep[i], same = False, same + 1
        elif d in seen:
            keep[i], dup = False, dup + 1
        seen.add(d)
    used = es.subset(keep)
    used.identities = np.array([identity(p, files.labelled) for p in used.paths], dtype=str)
    info = {"path": str(files.root), "labelled": files.labelled, "found": files.found,
            "excluded_identities": files.excluded_identities,
            "excluded_images": files.excluded_images, "images": len(es.paths),
            "no_face": no_face, "identical_to_dataset": same, "duplicates": dup,
            "faces": len(used.paths)}
    return used, info
