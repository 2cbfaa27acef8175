from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from faceledger.api.schemas_gallery import CollectionOut
from faceledger.gallery import collections
from faceledger.http.deps import Caller, Core, need

router = APIRouter(tags=["collections"])


class CollectionIn(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    legal_basis: str = Field(min_length=1, max_length=2000)
    description: str = Field(default="", max_length=4000)


@router.get("/collections", response_model=list[CollectionOut])
def get_collections(core: Core, caller: Annotated[Caller, Depends(need("collections.read"))]
                    ) -> list[dict[str, Any]]:
    return collections.collection_list(core, caller.principal)


@router.post("/collections", status_code=201, response_model=CollectionOut)
def create_collection(body: CollectionIn, core: Core,
                      caller: Annotated[Caller, Depends(need("collections.manage"))]
                      ) -> dict[str, Any]:
    return collections.create_collection(core, caller.principal, body.name, body.legal_basis,
                                         body.description)


@router.get("/collections/{name}", response_model=CollectionOut)
def get_collection(name: str, core: Core,
                   caller: Annotated[Caller, Depends(need("collections.read"))]
                   ) -> dict[str, Any]:
    return collections.collection_detail(core, caller.principal, name)
