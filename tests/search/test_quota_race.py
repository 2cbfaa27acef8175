"""The daily quota holds exactly under concurrent searches, from several threads and from two
processes: the quota check and the search it guards share one write transaction."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from faceledger.db.schema import Search
from faceledger.governance import ledger
from faceledger.search.match import resolve_collections
from tests.conftest import World
from tests.photos import astronaut_face, encode
from tests.search.quota_worker import run_many, slow_detector

ROOT = Path(__file__).resolve().parents[2]
RULE = "quota.searches_per_user_per_day"


def set_quota(world: World, quota: int) -> None:
    (world.app.settings.home / "policy.toml").write_text(
        'purposes = ["criminal investigation"]\noffences = ["robbery"]\n'
        f"[quota]\nsearches_per_user_per_day = {quota}\n")
    world.app._policy = None
    world.app.policy()


def ledgered(world: World) -> tuple[int, int, Counter[str]]:
    """(search rows, "search" ledger entries, rules of the "search.refused" entries)."""
    with world.app.db.read() as s:
        rows = s.execute(select(func.count(Search.id))).scalar_one()
        done = sum(e.kind == "search" for e in ledger.read(s, kind="search"))
        refused = Counter(str(ledger.entry_dict(e)["payload"]["rule"])
                          for e in ledger.read(s, kind="search.refused"))
    return rows, done, refused


def test_quota_holds_across_threads(world: World) -> None:
    set_quota(world, 2)
    slow_detector(world.app)
    outcomes = run_many(world.app, world.investigator_token, encode(astronaut_face()), 6,
                        time.time() + 0.5, "thread")
    assert Counter(outcomes) == {"ok": 2, RULE: 4}
    assert ledgered(world) == (2, 2, Counter({RULE: 4}))


def test_quota_holds_across_two_processes(world: World, tmp_path: Path) -> None:
    set_quota(world, 3)
    slow_detector(world.app)
    # Write the (empty) collections' index files first: two processes creating the same
    # index file at once is another race, outside this test (see the report on issue 11).
    resolve_collections(world.app, world.app.model_id, None)
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(encode(astronaut_face()))
    start_at = time.time() + 8  # time for the other process to load its models
    other = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-m", "tests.search.quota_worker",
         str(world.app.settings.home),
         world.investigator_token, "4", str(start_at), str(probe)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    mine = run_many(world.app, world.investigator_token, probe.read_bytes(), 4, start_at, "main")
    out, err = other.communicate(timeout=120)
    assert other.returncode == 0, err
    theirs = json.loads(out.strip().splitlines()[-1])
    assert Counter(mine + theirs) == {"ok": 3, RULE: 5}
    assert ledgered(world) == (3, 3, Counter({RULE: 5}))
