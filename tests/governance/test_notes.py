"""Signed notes, checkpoints and cosignatures (faceledger/governance/notes.py).

Fixtures from other implementations:
* PeterNeumann / EnochRoot keys, text and signatures: golang.org/x/mod, sumdb/note/note_test.go
  (TestSign, TestOpen, TestNewVerifier); PeterNeumann's private seed is the Go test's
  ``PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz``.
* ``TEST+7997405c+…`` (0x01, '+' inside its base64) and ``remora.n621.de+da77ade7+…`` (0x04):
  transparency-dev/formats, note/note_cosigv1_test.go (TestCoSigV1NewVerifier).
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from faceledger.errors import CheckpointError, LedgerIntegrityError
from faceledger.governance.notes import (
    ALG_COSIGNATURE_V1,
    MAX_NOTE_BYTES,
    Checkpoint,
    Signer,
    cosign,
    key_id,
    open_note,
    parse_checkpoint,
    parse_cosignature_vkey,
    parse_vkey,
    sign_note,
    unverified_body,
    verify_cosignature,
    vkey,
    witness_vkey,
)

PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = ("If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n")
PETER_SIG = ("— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfq"
             "dngotpRZb6KE6RyyBwJnAM=\n")
ENOCH_SIG = ("— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWL"
             "ox33WWd1RvMc+QQ=\n")
TEST_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"
REMORA_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"

ROOT = hashlib.sha256(b"root").digest()


def peter() -> Signer:
    return Signer("PeterNeumann", Ed25519PrivateKey.from_private_bytes(PETER_SEED))


def signer(name: str = "example.org/log") -> Signer:
    return Signer(name, Ed25519PrivateKey.generate())


# --- Go's vectors -----------------------------------------------------------------------------

def test_sign_note_reproduces_gos_signed_note_byte_for_byte() -> None:
    assert sign_note(TEXT, peter()) == TEXT + "\n" + PETER_SIG
    assert peter().vkey() == PETER_VKEY
    assert peter().key_id.hex() == "c74f20a3"


def test_open_note_verifies_gos_note_with_two_signers() -> None:
    peter_v, enoch_v = parse_vkey(PETER_VKEY), parse_vkey(ENOCH_VKEY)
    both = open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [peter_v, enoch_v])
    assert both.body == TEXT
    assert both.verified_by == ["PeterNeumann", "EnochRoot"]
    assert [(s.name, s.key_id.hex()) for s in both.signatures] == [
        ("PeterNeumann", "c74f20a3"), ("EnochRoot", "af0cfe78")]
    # Only Peter known: Enoch's signature is kept, unverified, not an error.
    one = open_note((TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode("utf-8"), [peter_v])
    assert one.verified_by == ["PeterNeumann"]
    assert len(one.signatures) == 2


def test_vkeys_of_other_implementations_parse_and_round_trip() -> None:
    for text, alg in ((PETER_VKEY, 1), (ENOCH_VKEY, 1), (TEST_VKEY, 1), (REMORA_VKEY, 4)):
        v = parse_vkey(text)
        assert (v.alg, v.vkey()) == (alg, text)
        assert key_id(v.name, v.public_key, alg) == v.key_id
    assert parse_cosignature_vkey(REMORA_VKEY).vkey() == REMORA_VKEY
    converted = parse_cosignature_vkey(TEST_VKEY)
    assert converted.alg == ALG_COSIGNATURE_V1 and converted.key_id != parse_vkey(TEST_VKEY).key_id
    assert converted.vkey() == witness_vkey("TEST", parse_vkey(TEST_VKEY).public_key)


@pytest.mark.parametrize("bad", [
    PETER_VKEY[:-1], PETER_VKEY + "A", "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "PeterNeumanx+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",  # Go: wrong length
    "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # Go: unknown algorithm
    "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "PeterNeumann+c74f20a3",
    "PeterNeumann+zzzzzzzz+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "",
])
def test_mangled_vkeys_are_refused(bad: str) -> None:
    with pytest.raises(CheckpointError):
        parse_vkey(bad)


def test_vkey_helpers_match_the_signer() -> None:
    s = signer()
    pub = s.private_key.public_key()
    assert vkey(s.name, pub) == s.vkey() == vkey(s.name, s.public_key)
    assert witness_vkey(s.name, pub) == s.witness_vkey()
    assert parse_vkey(s.witness_vkey()).key_id == key_id(s.name, s.public_key, ALG_COSIGNATURE_V1)
    with pytest.raises(CheckpointError):
        vkey(s.name, b"\x00" * 31)
    with pytest.raises(CheckpointError):
        Signer("a+b", Ed25519PrivateKey.generate())


# --- open_note refusals -----------------------------------------------------------------------

def test_tampered_body_or_signature_is_refused() -> None:
    known = [parse_vkey(PETER_VKEY)]
    with pytest.raises(CheckpointError, match="does not verify"):
        open_note(TEXT.replace("problem,", "problem;") + "\n" + PETER_SIG, known)
    broken = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]  # Go's "invalid signature" case
    with pytest.raises(CheckpointError, match="does not verify"):
        open_note(TEXT + "\n" + broken, known)


def test_a_bad_known_signature_rejects_the_note_even_beside_a_good_one() -> None:
    other = peter().sign(b"something else\n")
    forged = f"— PeterNeumann {base64.b64encode(peter().key_id + other).decode()}\n"
    with pytest.raises(CheckpointError, match="does not verify"):
        open_note(TEXT + "\n" + PETER_SIG + forged, [parse_vkey(PETER_VKEY)])


def test_wrong_or_unknown_key_gives_no_valid_signature() -> None:
    with pytest.raises(CheckpointError, match="no valid signature"):
        open_note(TEXT + "\n" + PETER_SIG, [parse_vkey(ENOCH_VKEY)])
    with pytest.raises(CheckpointError, match="no valid signature"):
        open_note(TEXT + "\n" + PETER_SIG, [])
    # Same name, different key (so a different key id): unknown, not verified.
    impostor = signer("PeterNeumann")
    with pytest.raises(CheckpointError, match="no valid signature"):
        open_note(TEXT + "\n" + PETER_SIG, [impostor.verifier()])


def test_duplicate_signatures_are_counted_once() -> None:
    note = TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG
    opened = open_note(note, [parse_vkey(PETER_VKEY)])
    assert opened.verified_by == ["PeterNeumann"]
    assert [s.name for s in opened.signatures] == ["PeterNeumann", "EnochRoot"]


def test_ambiguous_verifiers_are_refused_identical_ones_are_not() -> None:
    s = signer("dup")
    clash = parse_vkey(s.vkey())
    twin = type(clash)(clash.name, clash.key_id, bytes(32), clash.alg)  # same name and id, other key
    note = sign_note("x\n", s)
    assert open_note(note, [clash, clash]).verified_by == ["dup"]
    with pytest.raises(CheckpointError, match="share the name"):
        open_note(note, [clash, twin])


@pytest.mark.parametrize("bad", [
    TEXT,  # no signatures
    TEXT + "\n",  # blank line, no signatures
    TEXT + "\n" + PETER_SIG[:-1],  # last line without newline
    "\x01" + TEXT + "\n" + PETER_SIG,  # control character
    TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name"),
    TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    TEXT + "\n" + PETER_SIG.replace("— ", "- "),
    TEXT + "\n" + "— PeterNeumann \n",
    TEXT + "\n" + "— PeterNeumann AAAA\n",  # too short
    TEXT + "\n" + "— PeterNeumann not*base64\n",
    TEXT + "\n" + PETER_SIG.replace("AM=", "AN="),  # non-canonical base64
    TEXT + "\n" + PETER_SIG * 101,  # Go's limit: at most 100 signatures
])
def test_malformed_notes_are_refused(bad: str) -> None:
    with pytest.raises(CheckpointError):
        open_note(bad, [parse_vkey(PETER_VKEY)])


def test_invalid_utf8_and_huge_notes_are_refused() -> None:
    with pytest.raises(CheckpointError, match="UTF-8"):
        open_note(b"\xff" + (TEXT + "\n" + PETER_SIG).encode(), [parse_vkey(PETER_VKEY)])
    s = signer()
    huge = "a" * (MAX_NOTE_BYTES - 300) + "\n"
    note = sign_note(huge, s)
    assert open_note(note, [s.verifier()]).body == huge  # just under the limit: fine
    with pytest.raises(CheckpointError, match="over"):  # the body fits, the signed note would not
        sign_note("a" * (MAX_NOTE_BYTES - 50) + "\n", s)
    bigger = "é" * (MAX_NOTE_BYTES // 2) + "\n"  # under 1 Mi characters, over 1 MiB of UTF-8
    with pytest.raises(CheckpointError, match="over"):
        sign_note(bigger, s)
    with pytest.raises(CheckpointError, match="over"):
        open_note(bigger + "\n" + note.split("\n\n")[-1], [s.verifier()])
    with pytest.raises(CheckpointError, match="over"):
        open_note(("a" * MAX_NOTE_BYTES + "\n\n").encode(), [s.verifier()])


def test_sign_note_needs_a_final_newline() -> None:
    with pytest.raises(CheckpointError, match="newline"):
        sign_note("abc", signer())


def test_checkpoint_error_is_a_ledger_integrity_error() -> None:
    err = CheckpointError("x")
    assert isinstance(err, LedgerIntegrityError) and err.status == 500
    assert err.code == "checkpoint_invalid"


# --- checkpoints ------------------------------------------------------------------------------

def test_checkpoint_round_trip_through_a_signed_note() -> None:
    s = signer("example.org/log")
    cp = Checkpoint("example.org/log", 20852163, ROOT, ("ext one",))
    body = cp.body()
    assert body == f"example.org/log\n20852163\n{base64.b64encode(ROOT).decode()}\next one\n"
    opened = open_note(sign_note(body, s), [parse_vkey(s.vkey())])
    assert parse_checkpoint(opened.body) == cp
    assert parse_checkpoint(Checkpoint("o", 0, ROOT).body()).size == 0


def test_checkpoint_spec_example_parses() -> None:
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    cp = parse_checkpoint(body)  # c2sp.org/tlog-checkpoint's example
    assert (cp.origin, cp.size, len(cp.root), cp.extensions) == (
        "example.com/behind-the-sofa", 20852163, 32, ())
    assert cp.body() == body


def test_tampered_checkpoint_size_or_root_does_not_verify() -> None:
    s = signer("example.org/log")
    note = sign_note(Checkpoint("example.org/log", 41, ROOT).body(), s)
    root_b64 = base64.b64encode(ROOT).decode()
    other_root = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    for tampered in (note.replace("\n41\n", "\n42\n", 1), note.replace(root_b64, other_root, 1)):
        with pytest.raises(CheckpointError, match="does not verify"):
            open_note(tampered, [s.verifier()])


@pytest.mark.parametrize("body", [
    "origin\n1\n", "origin\n01\n{r}\n", "origin\n-1\n{r}\n", "origin\n+1\n{r}\n", "origin\n1.0\n{r}\n",
    "origin\n\u0661\n{r}\n", "\n1\n{r}\n", "two words\n1\n{r}\n", "a+b\n1\n{r}\n", "origin\n1\n{r}",
    "origin\n1\nAAAA\n", "origin\n1\n{r}x\n", "origin\n1\n{r}\n\n", "origin\n1\n{r}\next\n\n",
    "origin\n18446744073709551616\n{r}\n",
])
def test_malformed_checkpoints_are_refused(body: str) -> None:
    with pytest.raises(CheckpointError):
        parse_checkpoint(body.replace("{r}", base64.b64encode(ROOT).decode()))


def test_checkpoint_constructor_validates() -> None:
    for args in (("", 1, ROOT), ("o", -1, ROOT), ("o", 1, ROOT[:31]), ("o", True, ROOT)):
        with pytest.raises(CheckpointError):
            Checkpoint(*args)  # type: ignore[arg-type]
    with pytest.raises(CheckpointError):
        Checkpoint("o", 1, ROOT, ("",))
    with pytest.raises(CheckpointError):
        Checkpoint("o", 1, ROOT, ("a\nb",))


# --- cosignatures -----------------------------------------------------------------------------

def test_cosignature_round_trip_and_layout_per_spec() -> None:
    witness = signer("witness.example/w1")
    body = Checkpoint("example.org/log", 7, ROOT, ("ext",)).body()
    line = cosign(body, witness, 1679315147)
    assert line.startswith("— witness.example/w1 ") and line.endswith("\n")
    assert verify_cosignature(line, body, witness.witness_vkey()) == 1679315147
    assert verify_cosignature(line.rstrip("\n"), body, parse_cosignature_vkey(witness.vkey())) \
        == 1679315147
    # Independent check of the layout against the tlog-cosignature text.
    raw = base64.b64decode(line.split(" ")[-1])
    assert len(raw) == 4 + 8 + 64
    assert raw[:4] == hashlib.sha256(b"witness.example/w1\n\x04" + witness.public_key).digest()[:4]
    assert raw[4:12] == (1679315147).to_bytes(8, "big")
    message = b"cosignature/v1\ntime 1679315147\n" + body.encode()
    Ed25519PublicKey.from_public_bytes(witness.public_key).verify(raw[12:], message)


def test_cosigned_checkpoint_opens_with_log_and_witness_keys() -> None:
    log, witness = signer("example.org/log"), signer("witness.example/w1")
    body = Checkpoint("example.org/log", 3, ROOT).body()
    note = sign_note(body, log) + cosign(body, witness, 1700000000)
    opened = open_note(note, [parse_vkey(log.vkey()), parse_vkey(witness.witness_vkey())])
    assert opened.verified_by == ["example.org/log", "witness.example/w1"]
    # The witness's plain (0x01) key does not match a cosignature line.
    only_plain = open_note(note, [parse_vkey(log.vkey()), parse_vkey(witness.vkey())])
    assert only_plain.verified_by == ["example.org/log"]


def test_tampered_cosignature_is_refused() -> None:
    witness = signer("witness.example/w1")
    body = Checkpoint("example.org/log", 7, ROOT).body()
    wkey = witness.witness_vkey()
    line = cosign(body, witness, 1700000000)
    raw = bytearray(base64.b64decode(line.split(" ")[-1]))
    raw[11] ^= 1  # the timestamp
    moved_time = f"— witness.example/w1 {base64.b64encode(bytes(raw)).decode()}\n"
    other_body = Checkpoint("example.org/log", 8, ROOT).body()
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_cosignature(moved_time, body, wkey)
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_cosignature(line, other_body, wkey)
    with pytest.raises(CheckpointError, match="not by"):
        verify_cosignature(line, body, signer("witness.example/w1").witness_vkey())
    with pytest.raises(CheckpointError, match="not by"):
        verify_cosignature(line.replace("w1", "w2"), body, wkey)
    with pytest.raises(CheckpointError, match="not a cosignature"):
        verify_cosignature(line, body, witness.verifier())
    plain = sign_note(body, witness).split("\n\n")[-1]  # a note signature is not a cosignature
    with pytest.raises(CheckpointError):
        verify_cosignature(plain, body, wkey)


def test_cosign_refuses_bad_input() -> None:
    witness = signer("w")
    body = Checkpoint("o", 1, ROOT).body()
    for ts in (-1, 1 << 63):
        with pytest.raises(CheckpointError, match="timestamp"):
            cosign(body, witness, ts)
    with pytest.raises(CheckpointError):
        cosign("not a checkpoint\n", witness, 1)
    assert verify_cosignature(cosign(body, witness, (1 << 63) - 1), body, witness.witness_vkey()) \
        == (1 << 63) - 1


def test_unverified_body_splits_without_keys_but_still_parses() -> None:
    assert unverified_body(TEXT + "\n" + PETER_SIG + ENOCH_SIG) == TEXT
    with pytest.raises(CheckpointError):
        open_note(TEXT + "\n" + PETER_SIG, [])
    with pytest.raises(CheckpointError):
        unverified_body(TEXT + "\n" + PETER_SIG + "Unexpected line.\n")
