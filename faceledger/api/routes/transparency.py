"""The transparency log over the ledger: signed checkpoints, the log key, inclusion and
consistency proofs, witness cosignatures, and verification against a checkpoint."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, Field

from faceledger.governance import checkpoints, log_verify, proofs, witnesses
from faceledger.governance.ledger_service import SEQ_MAX
from faceledger.http.deps import Caller, Core, need

router = APIRouter(tags=["transparency log"])
HEX = r"^[0-9a-fA-F]{64}$"


class LogKeyOut(BaseModel):
    origin: str = Field(description="the log's name, the first line of every checkpoint")
    vkey: str = Field(description="C2SP signed-note verifier key: <origin>+<key id>+<key>")
    key_id: str
    public_key_pem: str


class CosignatureOut(BaseModel):
    witness: str
    key_id: str
    signed_at: str
    received_at: str
    line: str = Field(description="the C2SP tlog-cosignature line, as the witness signed it")


class CheckpointOut(BaseModel):
    id: int
    size: int
    root_hash: str
    note: str = Field(description="the C2SP tlog-checkpoint signed note")
    created_at: str
    reason: str
    cosignatures: list[CosignatureOut] = Field(default_factory=list)


class InclusionOut(BaseModel):
    seq: int
    leaf_index: int
    tree_size: int
    leaf: dict[str, Any] = Field(description="the fields the leaf hashes (SHA-256(0x00 || "
                                 "their canonical JSON)); opaque: recompute with the verifier")
    leaf_hash: str
    entry_hash: str
    root_hash: str
    path: list[str] = Field(description="RFC 9162 inclusion path, hex, leaf to root")
    checkpoint: str | None = Field(description="signed checkpoint of tree_size, if any")
    checkpoint_due: str | None = None
    payload: dict[str, Any] | None = None


class ConsistencyOut(BaseModel):
    from_: int = Field(alias="from", serialization_alias="from")
    to: int
    root_from: str
    root_to: str
    proof: list[str] = Field(description="RFC 9162 consistency proof, hex")

    model_config = {"populate_by_name": True}


class WitnessOut(BaseModel):
    witness: str
    key_id: str
    last_signed_at: str | None
    last_size: int | None
    cosignatures: int
    last_received_at: str | None


class CosignIn(BaseModel):
    size: int = Field(ge=0, le=SEQ_MAX)
    root_hash: str = Field(pattern=HEX)
    witness_vkey: str = Field(max_length=1000)
    cosignature: str = Field(max_length=1000, description="the cosignature line (— name sig)")


class VerifyLogIn(BaseModel):
    checkpoint: str | None = Field(None, max_length=65536, description="a signed checkpoint "
                                   "held outside the operator (a witness's, a court's)")
    vkey: str | None = Field(None, max_length=1000, description="the log key to trust "
                             "(default: the server's)")
    incremental: bool = False


class VerifyLogOut(BaseModel):
    ok: bool
    mode: str
    entries: int
    head_seq: int
    head_hash: str
    tree_size: int
    root_hash: str
    from_size: int
    checkpoints_checked: list[str]
    first_bad_seq: int | None
    reason: str | None
    record_problems: list[str] = Field(default_factory=list)


@router.get("/ledger/key", response_model=LogKeyOut)
def log_key(core: Core, caller: Annotated[Caller, Depends(need("ledger.checkpoint.read"))]
            ) -> dict[str, Any]:
    """The log's origin and public key: pin it to check checkpoints."""
    return checkpoints.log_key(core, caller.principal).as_dict()


@router.get("/ledger/checkpoint", response_model=CheckpointOut)
def latest_checkpoint(core: Core,
                      caller: Annotated[Caller, Depends(need("ledger.checkpoint.read"))]
                      ) -> dict[str, Any]:
    """The newest signed checkpoint, with its witnesses' cosignatures."""
    return checkpoints.latest_checkpoint(core, caller.principal)


@router.get("/ledger/checkpoints", response_model=list[CheckpointOut])
def list_checkpoints(core: Core,
                     caller: Annotated[Caller, Depends(need("ledger.checkpoint.read"))],
                     limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[dict[str, Any]]:
    """Signed checkpoints, newest first."""
    return checkpoints.list_checkpoints(core, caller.principal, limit)


@router.post("/ledger/checkpoints", response_model=CheckpointOut, status_code=201)
def create_checkpoint(core: Core,
                      caller: Annotated[Caller, Depends(need("ledger.checkpoint.create"))]
                      ) -> dict[str, Any]:
    """Sign a checkpoint of the log as it stands now (ledgered)."""
    return checkpoints.create_checkpoint(core, caller.principal)


@router.get("/ledger/proof/inclusion", response_model=InclusionOut)
def inclusion(core: Core, caller: Annotated[Caller, Depends(need("ledger.read"))],
              seq: Annotated[int, Query(ge=1, le=SEQ_MAX)],
              size: Annotated[int | None, Query(ge=1, le=SEQ_MAX, description=(
                  "tree size (default: the first checkpoint holding the entry, else the "
                  "log's size)"))] = None) -> dict[str, Any]:
    """Entry ``seq``'s inclusion proof."""
    return proofs.inclusion_proof(core, caller.principal, seq, size)


@router.get("/ledger/proof/consistency", response_model=ConsistencyOut,
            response_model_by_alias=True)
def consistency(core: Core, caller: Annotated[Caller, Depends(need("ledger.checkpoint.read"))],
                first: Annotated[int, Query(alias="from", ge=0, le=SEQ_MAX)],
                to: Annotated[int, Query(ge=0, le=SEQ_MAX)]) -> dict[str, Any]:
    """That the log at size ``to`` extends the log at size ``from``."""
    return proofs.consistency_proof(core, caller.principal, first, to)


@router.post("/ledger/cosignatures", response_model=CosignatureOut, status_code=201)
def cosign(core: Core, caller: Annotated[Caller, Depends(need("ledger.witness"))],
           body: CosignIn) -> dict[str, Any]:
    """A witness's cosignature of one of this log's checkpoints (ledgered)."""
    return witnesses.record_cosignature(core, caller.principal, body.size, body.root_hash,
                                        body.witness_vkey, body.cosignature)


@router.get("/ledger/witnesses", response_model=list[WitnessOut])
def witness_list(core: Core, caller: Annotated[Caller, Depends(need("ledger.read"))]
                 ) -> list[dict[str, Any]]:
    """Each witness key seen, and when it last co-signed."""
    return witnesses.witness_status(core, caller.principal)


@router.post("/ledger/verify", response_model=VerifyLogOut)
def verify_log(core: Core, caller: Annotated[Caller, Depends(need("ledger.verify"))],
               body: Annotated[VerifyLogIn, Body()]) -> dict[str, Any]:
    """Verify the chain and the Merkle log against a checkpoint (and every stored one)."""
    return log_verify.verify_log(core, caller.principal, checkpoint=body.checkpoint,
                                 vkey=body.vkey, incremental=body.incremental).as_dict()
