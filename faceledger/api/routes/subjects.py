"""Subject rights (admins): opt-out, erasure (preview, then confirm) and subject access."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from faceledger.faces.probefaces import FACE_HELP
from faceledger.http.deps import Caller, Core, need
from faceledger.http.ids import Id
from faceledger.http.media import data_uri
from faceledger.http.uploads import read_capped
from faceledger.oversight import subjects

FaceField = Annotated[int | None, Form(ge=1, description=FACE_HELP)]
FacesField = Annotated[list[int] | None, Form(description="with several photos: one face number "
                                             "per photo, in order. " + FACE_HELP)]
PHOTOS_HELP = "one or more photos of the person (up to 10; repeat the field)"
SubjectAdmin = Annotated[Caller, Depends(need("subjects.manage"))]

router = APIRouter(tags=["subjects"])


class EraseIn(BaseModel):
    face_ids: list[Id] = Field(max_length=10_000)  # none: the service refuses, saying why
    reference: str = Field(default="", max_length=200)


class OptoutOut(BaseModel):
    optout_id: int
    photos: int = Field(description="templates recorded: one per photo")


class PreviewFace(BaseModel):
    face_id: int
    image_id: int
    collection: str
    similarity: float
    thumbnail: str = Field(description="data: URI (JPEG)")


class PreviewOut(BaseModel):
    faces: list[PreviewFace]


class OptoutPreviewOut(BaseModel):
    photos: int
    threshold: float = Field(description="similarity at or above which a face is withheld")
    faces: list[PreviewFace] = Field(description="the gallery faces it will withhold")


class ErasedOut(BaseModel):
    images: int
    faces: int


class LogKeyShown(BaseModel):
    origin: str
    vkey: str = Field(description="C2SP note verifier key: check the proofs' checkpoints with "
                      "it (compare it with the key the operator publishes)")
    key_id: str


class AccessRow(BaseModel):
    search_id: int
    date: str = Field(description="when the search started (ISO 8601)")
    purpose: str
    offence: str
    unit: str
    matched_as: list[str] = Field(description="probe and/or result")
    outcome: str | None
    ledger_seq: int | None = Field(None, description="the search's ledger entry")
    proof: dict[str, Any] | None = Field(None, description=(
        "the entry's receipt (as GET /api/v1/ledger/proof/inclusion, plus `payload`: search_id, "
        "purpose, offence and started_at disclosed, every other field as a digest): check it "
        "offline with `faceledger ledger check-receipt FILE --key VKEY`"))
    proof_problem: str | None = Field(None, description="why there is no proof, if none")
    log_key: LogKeyShown | None = Field(None, description="the log's key (None: no key yet)")


async def _photo(core: Core, photo: UploadFile) -> bytes:
    return await read_capped(photo, core.settings.max_upload_bytes, "the photo")


@router.post("/subjects/optout/preview", response_model=OptoutPreviewOut)
async def optout_preview(core: Core, caller: SubjectAdmin,
                         photo: Annotated[list[UploadFile], File(description=PHOTOS_HELP)],
                         reference: Annotated[str, Form(max_length=200)] = "",
                         face: FacesField = None) -> dict[str, Any]:
    """The gallery faces an opt-out from these photos would withhold, with thumbnails, for the
    subject to see before it is confirmed (ledgered; nothing is recorded)."""
    data = [await _photo(core, p) for p in photo]
    pv = await run_in_threadpool(subjects.optout_preview, core, caller.principal, data,
                                 reference, _faces(face))
    return {"photos": pv.photos, "threshold": pv.threshold, "faces": _preview(core, pv.faces)}


@router.post("/subjects/optout", status_code=201, response_model=OptoutOut)
async def optout(core: Core, caller: SubjectAdmin,
                 photo: Annotated[list[UploadFile], File(description=PHOTOS_HELP)],
                 reference: Annotated[str, Form(max_length=200)] = "",
                 face: FacesField = None) -> dict[str, Any]:
    """Block a person's face (one template per photo) from every result and future ingest."""
    data = [await _photo(core, p) for p in photo]
    oid = await run_in_threadpool(subjects.optout, core, caller.principal, data, reference,
                                  _faces(face))
    return {"optout_id": oid, "photos": len(data)}


def _faces(face: list[int] | None) -> list[int | None] | None:
    """No face numbers: each photo's only face; otherwise one per photo (the service checks)."""
    return None if not face else list(face)


def _preview(core: Core, found: list[subjects.FoundFace]) -> list[dict[str, Any]]:
    return [{"face_id": f.face_id, "image_id": f.image_id, "collection": f.collection,
             "similarity": f.similarity,
             "thumbnail": data_uri(core.files.read(f.thumbnail_path), "image/jpeg")}
            for f in found]


@router.post("/subjects/erase/preview", response_model=PreviewOut)
async def erase_preview(core: Core, caller: SubjectAdmin, photo: Annotated[UploadFile, File()],
                        face: FaceField = None) -> dict[str, Any]:
    """The faces an erasure would remove, with thumbnails, for the operator to confirm."""
    data = await _photo(core, photo)
    found = await run_in_threadpool(subjects.erase_preview, core, caller.principal, data, face)
    return {"faces": _preview(core, found)}


@router.post("/subjects/erase", response_model=ErasedOut)
def erase(body: EraseIn, core: Core, caller: SubjectAdmin) -> dict[str, Any]:
    """Delete the images holding the confirmed faces (rows, files, thumbnails, vectors)."""
    return subjects.erase(core, caller.principal, body.face_ids, body.reference)


@router.post("/subjects/access", response_model=list[AccessRow])
async def access(core: Core, caller: SubjectAdmin, photo: Annotated[UploadFile, File()],
                 face: FaceField = None) -> list[dict[str, Any]]:
    """Who searched for this face? (date, purpose, unit, outcome), each search with its ledger
    proof and the log key, to be checked without trusting the operator."""
    data = await _photo(core, photo)
    return await run_in_threadpool(subjects.access, core, caller.principal, data, face)
