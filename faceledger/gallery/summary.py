"""What an ingest did: the running counts a job reports while it runs and when it ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from faceledger.gallery.repository import BatchResult, JobTotals


@dataclass
class IngestSummary:
    job_id: int = 0
    collection: str = ""
    total: int = 0
    processed: int = 0
    added: int = 0
    duplicates: int = 0
    new_sources: int = 0
    rejected: int = 0
    faces: int = 0
    blocked_faces: int = 0  # faces of opted-out people, not stored
    # Images added, by the number of faces found in each (0, 1, several).
    images_no_face: int = 0
    images_one_face: int = 0
    images_several_faces: int = 0
    seconds: float = 0.0
    # waiting -> loading models -> processing -> indexing -> done
    stage: str = "waiting"
    rejections: list[dict[str, str]] = field(default_factory=list)
    no_face_images: list[str] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)  # e.g. unmatched manifest rows

    def count_image(self, display: str, faces: int) -> None:
        """Tally one added image by its number of faces."""
        if faces == 0:
            self.images_no_face += 1
            self.no_face_images.append(display)
        elif faces == 1:
            self.images_one_face += 1
        else:
            self.images_several_faces += 1

    def totals(self) -> JobTotals:
        """The running totals a job's row records."""
        return JobTotals(processed=self.processed, added=self.added,
                         duplicates=self.duplicates, rejected=self.rejected, faces=self.faces)

    def apply(self, batch: BatchResult) -> None:
        """Add a committed batch's counts."""
        for display, faces in batch.added:
            self.added += 1
            self.faces += faces
            self.count_image(display, faces)
        self.duplicates += batch.duplicates
        self.new_sources += batch.new_sources
        self.rejected += batch.rejected

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["rejections"], d["no_face_images"] = list(self.rejections), list(self.no_face_images)
        d["warnings"] = list(self.warnings)
        d["images_per_s"] = round(self.processed / self.seconds, 2) if self.seconds else None
        d["faces_per_s"] = round(self.faces / self.seconds, 2) if self.seconds else None
        return d
