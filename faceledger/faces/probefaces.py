"""Faces in a probe (or subject) photo, and how people name them.

One convention everywhere people see or type a face number (CLI ``--face N``, the API's
``face`` field and JSON, the web pages, the subject-rights forms): faces are numbered
**1, 2, … left to right**. Detections are sorted left to right by the detector layer; the
0-based list index is internal, and this module is the one place that converts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from faceledger.errors import FaceChoiceRequired, ValidationError

if TYPE_CHECKING:
    from faceledger.faces.detect import Detection

NUMBERING = "faces are numbered 1, 2, … left to right"
FACE_HELP = ("Which face, when the photo holds several: its number, 1, 2, … counted left to "
             "right (as the face list and the web page show them).")


@dataclass(frozen=True)
class ProbeFace:
    face: int  # the face's number: 1, 2, … left to right
    box: list[int]
    detector_score: float
    face_px: int


def probe_faces(detections: list[Detection]) -> list[ProbeFace]:
    return [ProbeFace(i + 1, d.box.as_list(), round(d.score, 4),
                      min(d.box.width, d.box.height))
            for i, d in enumerate(_left_to_right(detections))]


def _left_to_right(detections: list[Detection]) -> list[Detection]:
    return sorted(detections, key=lambda d: (d.box.left, d.box.top))


def index_of(number: int | None) -> int | None:
    """The internal 0-based index of face number ``number`` (None stays None)."""
    return None if number is None else number - 1


def number_of(index: int) -> int:
    return index + 1


def choose_face(detections: list[Detection], number: int | None, photo: str = "probe photo"
                ) -> tuple[list[Detection], int]:
    """(detections left to right, the 0-based index of the chosen face). Several faces and no
    number: FaceChoiceRequired, listing them; a number out of range: ValidationError."""
    ordered = _left_to_right(detections)
    n = len(ordered)
    if number is None:
        if n > 1:
            raise FaceChoiceRequired(
                f"the {photo} holds {n} faces; choose one with its face number, 1-{n} "
                f"({NUMBERING})", faces=[asdict(f) for f in probe_faces(ordered)])
        return ordered, 0
    if not 1 <= number <= n:
        raise ValidationError(f"face {number} is out of range: the {photo} has {n} face(s), "
                              f"numbered 1-{n} left to right")
    return ordered, number - 1


def faces_json(detections: list[Detection]) -> list[dict[str, Any]]:
    return [asdict(f) for f in probe_faces(detections)]
