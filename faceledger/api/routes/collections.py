from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from faceledger.api.deps import Caller, Core, need
from faceledger.collections import add_collection, list_collections

router = APIRouter(tags=["collections"])


class CollectionIn(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    legal_basis: str = Field(min_length=1, max_length=2000)
    description: str = Field(default="", max_length=4000)


@router.get("/collections")
def get_collections(core: Core, _: Annotated[Caller, Depends(need("collections.read"))]
                    ) -> list[dict[str, Any]]:
    with core.db.read() as s:
        return list_collections(s)


@router.post("/collections", status_code=201)
def create_collection(body: CollectionIn, core: Core,
                      caller: Annotated[Caller, Depends(need("collections.manage"))]
                      ) -> dict[str, Any]:
    with core.db.write() as s:
        add_collection(s, body.name, body.legal_basis, body.description,
                       actor=caller.principal)
    return get_collection(body.name, core, caller)


@router.get("/collections/{name}")
def get_collection(name: str, core: Core,
                   _: Annotated[Caller, Depends(need("collections.read"))]) -> dict[str, Any]:
    from faceledger.collections import get_collection as fetch

    with core.db.read() as s:
        fetch(s, name)  # NotFound with a hint
        return next(c for c in list_collections(s) if c["name"] == name)
