"""`faceledger search` as a user reads it: calibrated bands with bars and marks, face numbers
from 1 everywhere (search and subject rights), and a wrong collection naming the valid ones."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.cli.test_cli import CLI, setup
from tests.photos import astronaut_face, collage, encode, grace_hopper

WHY = ["--case", "C-10", "--purpose", "criminal investigation", "--offence", "burglary",
       "--legal-basis", "PACE"]


def test_search_output_bands_marks_numbers(tmp_path: Path) -> None:
    cli = CLI(tmp_path / "home")
    admin, ivy, _ = setup(cli)
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "astronaut.jpg").write_bytes(encode(astronaut_face()))
    (photos / "grace.jpg").write_bytes(encode(grace_hopper()))
    (photos / "m.csv").write_text("path,source_url,page_url,title,captured_at\n"
                                  "astronaut.jpg,https://example.org/a.jpg,,Astronaut portrait,"
                                  "2021-07-20T10:00:00Z\n")
    cli("ingest", str(photos), "--collection", "mugshots", "--manifest", str(photos / "m.csv"),
        token=admin)
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(encode(astronaut_face()))  # the very bytes of the gallery's image

    out = cli("search", str(probe), *WHY, token=ivy).stdout
    assert "Bands (calibration 1): likely same person >= 0.9613 (FMR 1e-06); possible >= " \
           "0.9257 (FMR 0.001); unlikely below" in out
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if re.match(r"\s+1\. ", line))
    assert re.match(r"\s+1\. 1\.0000  likely\s+\[[#|]{20}\]", lines[first]), lines[first]
    assert '"Astronaut portrait" 2021-07-20' in lines[first]
    assert "= the probe image itself (same bytes)" in out
    rule = next(i for i, line in enumerate(lines) if "---- likely same person above" in line)
    second = next(i for i, line in enumerate(lines) if re.match(r"\s+2\. ", line))
    assert first < rule < second and "unlikely" in lines[second]
    assert re.search(r"\[[#.]*\|[#.]*\|[#.]*\]", lines[second]), "threshold marks in the bar"

    js = json.loads(cli("search", str(probe), *WHY, "--json", token=ivy).stdout)
    assert js["schema_version"] == 2 and js["face"] == 1
    assert [c["band"] for c in js["candidates"]] == ["likely", "unlikely"]
    assert js["candidates"][0]["probe_image"] is True and js["bands"]["possible"]["fmr"] == 1e-3

    # A wrong collection: the error names the valid ones.
    wrong = cli("search", str(probe), *WHY, "--collection", "mugshot", token=ivy, check=False)
    assert wrong.returncode == 1 and "known collections: mugshots" in wrong.stderr

    # Faces are numbered from 1: a two-face photo lists faces 1 and 2; --face 0 is refused.
    two = tmp_path / "two.jpg"
    two.write_bytes(encode(collage()))
    choose = cli("search", str(two), *WHY, token=ivy, check=False)
    assert choose.returncode == 5 and "face 1:" in choose.stderr and "face 2:" in choose.stderr
    assert "numbered 1, 2, … left to right" in choose.stderr and "face 0" not in choose.stderr
    zero = cli("search", str(two), *WHY, "--face", "0", token=ivy, check=False)
    assert zero.returncode == 2 and "--face" in zero.stderr
    right = json.loads(cli("search", str(two), *WHY, "--face", "2", "--json", token=ivy).stdout)
    assert right["face"] == 2 and right["candidates"][0]["band"] == "likely"
    assert right["candidates"][0]["source_url"] is None  # grace.jpg has no manifest row

    # Subject rights use the same numbers.
    need = cli("subject", "access", str(two), token=admin, check=False)
    assert need.returncode == 5 and "face 2:" in need.stderr
    access = json.loads(cli("subject", "access", str(two), "--face", "2", "--json",
                            token=admin).stdout)
    as_probe = [r["search_id"] for r in access if "probe" in r["matched_as"]]
    assert as_probe == [right["search_id"]]  # face 2 (Grace Hopper) was only searched there


def test_face_option_help_says_numbered_from_one(tmp_path: Path) -> None:
    cli = CLI(tmp_path / "home")
    for cmd in (["search"], ["subject", "optout"], ["subject", "erase"], ["subject", "access"]):
        text = re.sub(r"[\s│|]+", " ", cli(*cmd, "--help", env={"COLUMNS": "200"}).stdout)
        assert "1, 2, … counted left to right" in text, cmd
