"""match as used by the search service: collections resolved (unknown ones refused, naming
the known), identify mode's threshold, candidates with provenance."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceledger.errors import ValidationError
from faceledger.gallery.ingest import Ingest
from faceledger.search.match import candidates, match, resolve_collections
from tests.conftest import World
from tests.photos import astronaut_face, encode, grace_hopper


@pytest.fixture
def gallery(world: World, tmp_path: Path) -> World:
    d = tmp_path / "g"
    d.mkdir()
    (d / "astro.jpg").write_bytes(encode(astronaut_face()))
    (d / "grace.jpg").write_bytes(encode(grace_hopper()))
    (d / "m.csv").write_text("path,source_url,page_url\n"
                             "astro.jpg,https://example.org/a.jpg,https://example.org/a\n")
    Ingest(world.app, world.admin).run([d], "gallery", d / "m.csv")
    return world


def test_resolve_and_match(gallery: World) -> None:
    app = gallery.app
    cols = resolve_collections(app, app.model_id, None)
    assert [(n, c) for _i, n, c in cols] == [("gallery", 2)]
    with pytest.raises(ValidationError, match="unknown collection") as info:
        resolve_collections(app, app.model_id, ["nope"])
    assert info.value.details["known"] == ["gallery"]
    probe = app.pipeline().process(encode(astronaut_face())).faces[0].embedding
    found = match(app, probe, cols, "investigate", 5)
    assert len(found.hits) == 2 and found.calibration is None and found.withheld == 0
    assert found.hits[0][0] > found.hits[1][0]
    ident = match(app, probe, cols, "identify", 5)
    assert ident.calibration is not None and len(ident.hits) == 1
    (top,) = candidates(app, ident.hits)
    assert (top.rank, top.source_url, top.collection) == (1, "https://example.org/a.jpg",
                                                          "gallery")
