"""Signed notes, transparency-log checkpoints and witness cosignatures (Ed25519).

The formats, as checked against the specs and the reference implementation:

* **Signed note** (C2SP ``signed-note``, https://c2sp.org/signed-note; Go's
  ``golang.org/x/mod/sumdb/note``, ``note.go``): a UTF-8 text whose every line ends in ``\\n``
  and that holds no ASCII control character but ``\\n``, a blank line, then one or more lines
  ``"— <name> <base64(4-byte key id || signature)>\\n"`` (U+2014 EM DASH, space). The text is
  split from the signatures at the *last* blank line. Key names are non-empty and hold no
  Unicode space and no ``+``. Ed25519 signs exactly the text (its final ``\\n`` included); the
  key id is ``SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4]``. A verifier key
  ("vkey") is ``<name>+<8 hex key id>+<base64(type byte || public key)>``.
  Opening follows Go's ``note.Open``: signatures from unknown keys are kept, not errors; a
  known key whose signature fails rejects the whole note; a note with no signature from a
  known key is rejected; identical signature lines are kept once; more than 100 signatures
  are refused (Go's limit). We also refuse notes over 1 MiB (our limit), verify *every*
  signature of a known key (Go skips a known key's repeats unverified) and require
  canonical base64.
* **Checkpoint** (C2SP ``tlog-checkpoint``, https://c2sp.org/tlog-checkpoint): note text of
  the origin line, the tree size in decimal (no leading zeros, ``0`` for the empty tree), the
  base64 RFC 6962 root hash, then optional non-empty extension lines. The spec only
  RECOMMENDS an origin without spaces or ``+``; we require it, so the origin can also be
  the log's key name.
* **Cosignature** (C2SP ``tlog-cosignature``, https://c2sp.org/tlog-cosignature,
  ``cosignature/v1`` Ed25519; transparency-dev/formats ``note/note_cosigv1.go``): a note
  signature line whose key id is ``SHA-256(name || 0x0A || 0x04 || public key)[:4]`` and
  whose value is ``base64(key id || u64 big-endian timestamp || 64-byte signature)``; the
  signature covers ``"cosignature/v1\\ntime <seconds, no leading zeros>\\n"`` followed by the
  whole checkpoint text (extension lines included). Timestamps are at most 2^63 - 1.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from faceledger.errors import CheckpointError

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
MAX_NOTE_BYTES = 1 << 20
MAX_SIGNATURES = 100
MAX_TIMESTAMP = (1 << 63) - 1
MAX_TREE_SIZE = (1 << 64) - 1
SIG_PREFIX = "— "  # U+2014 EM DASH, space

PublicKeyLike = bytes | Ed25519PublicKey


def _raw_public(public_key: PublicKeyLike) -> bytes:
    raw = (public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
           if isinstance(public_key, Ed25519PublicKey) else bytes(public_key))
    if len(raw) != 32:
        raise CheckpointError(f"an Ed25519 public key is 32 bytes, not {len(raw)}")
    return raw


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 and c != "\n" for c in text)


def valid_name(name: str) -> bool:
    """A key name or origin: non-empty, no Unicode space, no ``+``, no control character."""
    return (bool(name) and "+" not in name and not any(c.isspace() for c in name)
            and not _has_control(name))


def _check_name(name: str, what: str = "key name") -> None:
    if not valid_name(name):
        raise CheckpointError(f"{what} {name!r} must be non-empty, without spaces or '+'")


def _b64decode(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CheckpointError(f"{what} is not base64") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise CheckpointError(f"{what} is not canonical base64")
    return raw


def key_id(name: str, public_key: PublicKeyLike, alg: int = ALG_ED25519) -> bytes:
    """The 4-byte key id: SHA-256(name || 0x0A || alg || public key)[:4]."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([alg]) + _raw_public(public_key))
    return digest.digest()[:4]


def _cosigned_message(body: bytes, timestamp: int) -> bytes:
    return b"cosignature/v1\ntime %d\n" % timestamp + body


@dataclass(frozen=True)
class Verifier:
    """A known key: its name, key id, raw Ed25519 public key and signature type
    (0x01 note signature, 0x04 cosignature/v1)."""

    name: str
    key_id: bytes
    public_key: bytes
    alg: int = ALG_ED25519

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (the bytes after the key id) signs the note text ``text``."""
        message = text
        if self.alg == ALG_COSIGNATURE_V1:
            if len(signature) != 72:
                return False
            timestamp = int.from_bytes(signature[:8], "big")
            if timestamp > MAX_TIMESTAMP:
                return False
            message, signature = _cosigned_message(text, timestamp), signature[8:]
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def vkey(self) -> str:
        """This key as a vkey string."""
        blob = base64.b64encode(bytes([self.alg]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{blob}"


def _verifier(name: str, public_key: PublicKeyLike, alg: int) -> Verifier:
    _check_name(name)
    raw = _raw_public(public_key)
    return Verifier(name, key_id(name, raw, alg), raw, alg)


def vkey(name: str, public_key: PublicKeyLike) -> str:
    """The Ed25519 note verifier key ``<name>+<key id>+<base64(0x01 || key)>``."""
    return _verifier(name, public_key, ALG_ED25519).vkey()


def witness_vkey(name: str, public_key: PublicKeyLike) -> str:
    """A witness's cosignature/v1 verifier key (type byte and key id with 0x04)."""
    return _verifier(name, public_key, ALG_COSIGNATURE_V1).vkey()


def parse_vkey(text: str) -> Verifier:
    """Parse a vkey of type 0x01 (Ed25519) or 0x04 (cosignature/v1); the key id must match."""
    name, _, rest = text.strip().partition("+")
    hex_id, _, blob = rest.partition("+")
    _check_name(name)
    try:
        claimed = bytes.fromhex(hex_id) if len(hex_id) == 8 else b""
    except ValueError:
        claimed = b""
    if not claimed:
        raise CheckpointError(f"verifier key {text!r}: the key id is not 8 hex digits")
    raw = _b64decode(blob, "verifier key")
    if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE_V1):
        raise CheckpointError("verifier key is not an Ed25519 (0x01) or cosignature (0x04) key")
    verifier = _verifier(name, raw[1:], raw[0])
    if verifier.key_id != claimed:
        raise CheckpointError(f"verifier key {name}: key id {hex_id} does not match its key")
    return verifier


def parse_cosignature_vkey(text: str) -> Verifier:
    """A witness key: a 0x04 vkey, or a 0x01 vkey of the same key (re-derived as 0x04)."""
    verifier = parse_vkey(text)
    if verifier.alg == ALG_COSIGNATURE_V1:
        return verifier
    return _verifier(verifier.name, verifier.public_key, ALG_COSIGNATURE_V1)


class Signer:
    """A named Ed25519 private key that signs notes (0x01) and cosignatures (0x04)."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        _check_name(name)
        self.name = name
        self.private_key = private_key
        self.public_key = _raw_public(private_key.public_key())
        self.key_id = key_id(name, self.public_key, ALG_ED25519)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)

    def verifier(self) -> Verifier:
        return Verifier(self.name, self.key_id, self.public_key, ALG_ED25519)

    def vkey(self) -> str:
        return self.verifier().vkey()

    def witness_vkey(self) -> str:
        return witness_vkey(self.name, self.public_key)


def _text_bytes(text: str, what: str) -> bytes:
    if len(text) > MAX_NOTE_BYTES:
        raise CheckpointError(f"{what} is over {MAX_NOTE_BYTES} bytes")
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CheckpointError(f"{what} is not valid UTF-8") from exc
    if len(data) > MAX_NOTE_BYTES:
        raise CheckpointError(f"{what} is over {MAX_NOTE_BYTES} bytes")
    if _has_control(text):
        raise CheckpointError(f"{what} holds a control character")
    return data


def _check_body(body: str) -> bytes:
    data = _text_bytes(body, "note text")
    if not body.endswith("\n"):
        raise CheckpointError("note text must end with a newline")
    return data


def _signature_line(name: str, blob: bytes) -> str:
    return f"{SIG_PREFIX}{name} {base64.b64encode(blob).decode('ascii')}\n"


def sign_note(body: str, signer: Signer) -> str:
    """The signed note: ``body``, a blank line and ``signer``'s Ed25519 signature line."""
    data = _check_body(body)
    note = body + "\n" + _signature_line(signer.name, signer.key_id + signer.sign(data))
    _text_bytes(note, "signed note")
    return note


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key id and the signature bytes after it."""

    name: str
    key_id: bytes
    sig: bytes


@dataclass(frozen=True)
class OpenedNote:
    """A note whose signatures were checked: its text, the names of the known keys that
    signed it (once per key) and every distinct signature line, known or not, in order."""

    body: str
    verified_by: list[str]
    signatures: list[NoteSignature]


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(SIG_PREFIX):
        raise CheckpointError("a signature line must start with an em dash and a space")
    name, _, b64 = line[len(SIG_PREFIX):].partition(" ")
    _check_name(name)
    if not b64:
        raise CheckpointError(f"signature line of {name} has no signature")
    raw = _b64decode(b64, f"signature of {name}")
    if len(raw) < 5:
        raise CheckpointError(f"signature of {name} is too short")
    return NoteSignature(name, raw[:4], raw[4:])


def _split_note(text: str) -> tuple[str, list[NoteSignature]]:
    _text_bytes(text, "signed note")
    split = text.rfind("\n\n")
    if split < 0:
        raise CheckpointError("signed note has no blank line before its signatures")
    body, block = text[: split + 1], text[split + 2:]
    if not block or not block.endswith("\n"):
        raise CheckpointError("signed note has no signature lines, or lacks its final newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError(f"signed note has over {MAX_SIGNATURES} signatures")
    seen: set[str] = set()
    signatures = []
    for line in lines:
        if line not in seen:
            seen.add(line)
            signatures.append(_parse_signature_line(line))
    return body, signatures


def unverified_body(text: str) -> str:
    """The text of a well-formed signed note, its signatures NOT checked (for notes this log
    stored itself); ``CheckpointError`` if malformed. Use ``open_note`` for anything else."""
    return _split_note(text)[0]


def _index(verifiers: Iterable[Verifier]) -> dict[tuple[str, bytes], Verifier]:
    known: dict[tuple[str, bytes], Verifier] = {}
    for v in verifiers:
        other = known.setdefault((v.name, v.key_id), v)
        if other != v:
            raise CheckpointError(f"two verifier keys share the name {v.name} and key id "
                                  f"{v.key_id.hex()}")
    return known


def open_note(text: str | bytes, verifiers: Iterable[Verifier]) -> OpenedNote:
    """Parse ``text`` (str, or UTF-8 bytes) and check it against ``verifiers``; raise
    ``CheckpointError`` if it is malformed, a known key's signature fails, or no known key
    signed it."""
    known = _index(verifiers)
    if isinstance(text, bytes):
        if len(text) > MAX_NOTE_BYTES:
            raise CheckpointError(f"signed note is over {MAX_NOTE_BYTES} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CheckpointError("signed note is not valid UTF-8") from exc
    body, signatures = _split_note(text)
    data = body.encode("utf-8")
    verified: list[tuple[str, bytes]] = []
    for s in signatures:
        v = known.get((s.name, s.key_id))
        if v is None:
            continue
        if not v.verify(data, s.sig):
            raise CheckpointError(f"the signature of {s.name} ({s.key_id.hex()}) does not verify")
        if (s.name, s.key_id) not in verified:
            verified.append((s.name, s.key_id))
    if not verified:
        raise CheckpointError("the note has no valid signature from a known key")
    return OpenedNote(body, [name for name, _ in verified], signatures)


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, tree size, 32-byte root hash and extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_name(self.origin, "checkpoint origin")
        if isinstance(self.size, bool) or not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError(f"checkpoint tree size {self.size} is out of range")
        if len(self.root) != 32:
            raise CheckpointError(f"checkpoint root hash is {len(self.root)} bytes, not 32")
        for line in self.extensions:
            if not line or "\n" in line or _has_control(line):
                raise CheckpointError("checkpoint extension lines must be non-empty single lines")

    def body(self) -> str:
        """The note text: origin, size, base64 root and extension lines, each ending in ``\\n``."""
        root = base64.b64encode(self.root).decode("ascii")
        return "".join(f"{line}\n" for line in (self.origin, str(self.size), root, *self.extensions))


def parse_checkpoint(body: str) -> Checkpoint:
    """Parse (strictly) a checkpoint's note text, as ``Checkpoint.body`` writes it."""
    _check_body(body)
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("a checkpoint has an origin, a tree size and a root hash line")
    origin, size, root, *extensions = lines
    if not size.isascii() or not size.isdigit() or (size != "0" and size.startswith("0")):
        raise CheckpointError(f"checkpoint tree size {size!r} is not a decimal without "
                              "leading zeros")
    return Checkpoint(origin, int(size), _b64decode(root, "checkpoint root hash"), tuple(extensions))


def cosign(body: str, witness_signer: Signer, timestamp: int) -> str:
    """The cosignature/v1 line (ending in ``\\n``) of ``witness_signer`` over a checkpoint."""
    parse_checkpoint(body)
    if isinstance(timestamp, bool) or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise CheckpointError(f"cosignature timestamp {timestamp} is out of range")
    kid = key_id(witness_signer.name, witness_signer.public_key, ALG_COSIGNATURE_V1)
    sig = witness_signer.sign(_cosigned_message(body.encode("utf-8"), timestamp))
    return _signature_line(witness_signer.name, kid + timestamp.to_bytes(8, "big") + sig)


def verify_cosignature(line: str, body: str, witness: str | Verifier) -> int:
    """Check a cosignature line (trailing ``\\n`` optional) over the checkpoint ``body``
    against a witness key (vkey string or ``Verifier``); return its timestamp."""
    verifier = parse_cosignature_vkey(witness) if isinstance(witness, str) else witness
    if verifier.alg != ALG_COSIGNATURE_V1:
        raise CheckpointError(f"{verifier.name} is not a cosignature (0x04) key")
    parse_checkpoint(body)
    data = body.encode("utf-8")
    s = _parse_signature_line(line.removesuffix("\n"))
    if (s.name, s.key_id) != (verifier.name, verifier.key_id):
        raise CheckpointError(f"the cosignature is by {s.name} ({s.key_id.hex()}), not by "
                              f"{verifier.name} ({verifier.key_id.hex()})")
    if len(s.sig) != 72 or not verifier.verify(data, s.sig):
        raise CheckpointError(f"the cosignature of {s.name} does not verify")
    return int.from_bytes(s.sig[:8], "big")
