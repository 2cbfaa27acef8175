"""A witness of a faceledger log, run by an oversight body on its own machine.

Each run fetches the log's latest checkpoint over HTTP (an auditor's token), checks its
signature against the log key pinned in the state folder, checks a consistency proof from the
last checkpoint it stored, stores the new one, and (optionally) co-signs it (C2SP
``tlog-cosignature``) and posts the cosignature back. Any inconsistency is an ``Alarm``: a
smaller log than before (rollback), a different root at the same size (fork), a proof that does
not hold (rewritten history), or a bad signature. The state folder holds nothing secret but
the witness's own key (0600): log.vkey (pinned on first use, or given), checkpoint (the last
verified note), witness.key, witness.vkey, history.jsonl."""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faceledger.errors import CheckpointError, FaceledgerError
from faceledger.governance import merkle, notes, signing_key

TIMEOUT = 30.0


class Alarm(FaceledgerError):
    """The log is not an append-only extension of what this witness saw before."""


class WitnessError(FaceledgerError):
    """The witness could not complete a check (network, token, state): nothing was proven."""


@dataclass(frozen=True)
class WitnessRun:
    origin: str
    previous_size: int | None
    size: int
    root_hash: str
    pinned_now: bool  # the log key was pinned on this run (trust on first use)
    cosigned: bool

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


class Client:
    def __init__(self, url: str, token: str) -> None:
        self.base = url.rstrip("/") + "/api/v1"
        self.token = token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None
             ) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Accept": "application/json",
            **({"Content-Type": "application/json"} if data else {})})
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
                out: dict[str, Any] = json.loads(resp.read(4 << 20))
                return out
        except urllib.error.HTTPError as exc:
            detail = exc.read(2000).decode("utf-8", "replace")
            raise WitnessError(f"{method} {path}: HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise WitnessError(f"{method} {path}: {exc}") from exc


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _witness_signer(state: Path, name: str | None) -> notes.Signer:
    key = state / "witness.key"
    if not key.exists():
        signing_key.create_key(key)
    chosen = name or f"{socket.gethostname()}.witness.invalid"
    named = state / "witness.name"
    if named.exists() and name is None:
        chosen = named.read_text().strip()
    _write(named, chosen + "\n")
    return signing_key.load_signer(key, chosen)


def _log_verifier(state: Path, client: Client, log_key: str | None) -> tuple[str, bool]:
    pinned = state / "log.vkey"
    if pinned.exists():
        held = pinned.read_text().strip()
        if log_key and log_key.strip() != held:
            raise Alarm(f"the log key given ({log_key.strip()}) is not the one pinned in "
                        f"{pinned} ({held}): a different log, or a replaced key")
        return held, False
    vkey = log_key.strip() if log_key else str(client.call("GET", "/ledger/key")["vkey"])
    try:
        alg = notes.parse_vkey(vkey).alg
    except CheckpointError as exc:
        raise WitnessError(f"not a log key: {exc}") from exc
    if alg != notes.ALG_ED25519:  # never pin a key that cannot have signed a checkpoint
        raise WitnessError(f"{vkey} is a witness (cosignature 0x04) key, not the log's "
                           "Ed25519 (0x01) signing key")
    _write(pinned, vkey + "\n")
    return vkey, log_key is None


def _previous(state: Path, verifier: notes.Verifier) -> notes.Checkpoint | None:
    path = state / "checkpoint"
    if not path.exists():
        return None
    try:
        return notes.parse_checkpoint(notes.open_note(path.read_text(), [verifier]).body)
    except CheckpointError as exc:
        raise WitnessError(f"the stored checkpoint {path} does not verify: {exc}") from exc


def check_extends(client: Client, old: notes.Checkpoint, new: notes.Checkpoint) -> None:
    """Raise Alarm unless ``new`` is an append-only extension of ``old``."""
    if new.origin != old.origin:
        raise Alarm(f"the log's origin changed from {old.origin!r} to {new.origin!r}")
    if new.size < old.size:
        raise Alarm(f"ROLLBACK: the log now holds {new.size} entries but this witness saw "
                    f"{old.size}: entries were cut from the end")
    if new.size == old.size:
        if new.root != old.root:
            raise Alarm(f"FORK: two different logs of size {new.size} (root "
                        f"{old.root.hex()[:16]}… before, {new.root.hex()[:16]}… now)")
        return
    got = client.call("GET", f"/ledger/proof/consistency?from={old.size}&to={new.size}")
    proof = [bytes.fromhex(h) for h in got.get("proof", [])]
    if not merkle.verify_consistency(old.size, new.size, old.root, new.root, proof):
        raise Alarm(f"REWRITTEN HISTORY: the log at size {new.size} is not an extension of the "
                    f"log at size {old.size} this witness saw (the consistency proof fails)")


def run(url: str, token: str, state: Path, *, log_key: str | None = None,
        cosign: bool = True, name: str | None = None) -> WitnessRun:
    """One witness pass (see the module doc). Raises Alarm or WitnessError."""
    os.umask(0o077)  # the state folder is the witness's own: nobody else reads it
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    client = Client(url, token)
    vkey, pinned_now = _log_verifier(state, client, log_key)
    verifier = notes.parse_vkey(vkey)
    got = client.call("GET", "/ledger/checkpoint")
    note = str(got.get("note", ""))
    try:
        body = notes.open_note(note, [verifier]).body
        new = notes.parse_checkpoint(body)
    except CheckpointError as exc:
        raise Alarm(f"BAD SIGNATURE: the log's checkpoint does not verify with the pinned key "
                    f"{vkey}: {exc}") from exc
    old = _previous(state, verifier)
    if old is not None:
        check_extends(client, old, new)
    _write(state / "checkpoint", note)
    cosigned = False
    if cosign:
        signer = _witness_signer(state, name)
        line = notes.cosign(body, signer, int(datetime.now(UTC).timestamp()))
        _write(state / "witness.vkey", signer.witness_vkey() + "\n")
        client.call("POST", "/ledger/cosignatures", {
            "size": new.size, "root_hash": new.root.hex(), "witness_vkey": signer.witness_vkey(),
            "cosignature": line})
        cosigned = True
    outcome = WitnessRun(new.origin, old.size if old else None, new.size, new.root.hex(),
                         pinned_now, cosigned)
    with (state / "history.jsonl").open("a") as fh:
        fh.write(json.dumps({"at": datetime.now(UTC).isoformat(), **outcome.as_dict()}) + "\n")
    return outcome
