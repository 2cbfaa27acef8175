"""RFC 9162 Merkle tree hashing, proofs and their verification (pure: no SQL, bytes everywhere).

A tree of ``n`` leaves is stored as its complete aligned subtrees: node ``(level, idx)`` is the
root of leaves ``[idx * 2**level, (idx + 1) * 2**level)`` and exists once all of them do. Every
hash RFC 9162 needs (the tree head, an inclusion path, a consistency proof) is the hash of a
range that splits into such nodes, so a proof is computed from nodes fetched in one call of
``fetch(keys) -> {key: hash}``: the keys are collected first, then fetched, then combined.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

Key = tuple[int, int]  # (level, idx)
Fetch = Callable[[list[Key]], dict[Key, bytes]]
Range = tuple[int, int]  # leaves [start, end)

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1: HASH(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: HASH(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtrees(start: int, end: int) -> list[Key]:
    """The complete aligned subtrees covering leaves [start, end), left to right. For the ranges
    RFC 9162 recursion produces (start aligned to a power of two at least the range's length)
    that is the binary decomposition of the length, biggest first."""
    if start < 0 or end < start:
        raise ValueError(f"bad leaf range [{start}, {end})")
    out: list[Key] = []
    while start < end:
        level = (start & -start).bit_length() - 1 if start else (end - start).bit_length() - 1
        while start + (1 << level) > end:
            level -= 1
        out.append((level, start >> level))
        start += 1 << level
    return out


def fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from the hashes of its decomposition (biggest first): right to left."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def _range_hashes(ranges: list[Range], fetch: Fetch) -> list[bytes]:
    """MTH of each range, from one ``fetch`` of every node they need."""
    parts = [subtrees(lo, hi) for lo, hi in ranges]
    keys = list(dict.fromkeys(k for p in parts for k in p))
    got = fetch(keys) if keys else {}
    missing = [k for k in keys if k not in got]
    if missing:
        raise KeyError(f"Merkle tree nodes missing: {missing[:5]}")
    return [fold([got[k] for k in p]) for p in parts]


def root(size: int, fetch: Fetch) -> bytes:
    """The tree head (MTH) of the first ``size`` leaves."""
    if size < 0:
        raise ValueError("size must be at least 0")
    return _range_hashes([(0, size)], fetch)[0] if size else EMPTY_ROOT


def _path_ranges(index: int, lo: int, hi: int) -> list[Range]:
    """RFC 9162 §2.1.3.1 PATH(m, D[lo:hi]) as leaf ranges, leaf to root."""
    out: list[Range] = []
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    out.reverse()
    return out


def inclusion_proof(index: int, size: int, fetch: Fetch) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves (RFC 9162 §2.1.3.1)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    return _range_hashes(_path_ranges(index, 0, size), fetch)


def _consistency_ranges(m: int, n: int) -> list[Range]:
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[0:n], true) as leaf ranges, in proof order."""
    out: list[Range] = []
    lo, hi, complete = 0, n, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            m -= k
            lo += k
            complete = False
    if not complete:
        out.append((lo, hi))
    out.reverse()
    return out


def consistency_proof(m: int, n: int, fetch: Fetch) -> list[bytes]:
    """The proof that the tree of ``m`` leaves is a prefix of the tree of ``n`` (RFC 9162
    §2.1.4.1); empty when m is 0 or m == n."""
    if not 0 <= m <= n:
        raise ValueError(f"no consistency proof from {m} to {n} leaves")
    if m == 0 or m == n:
        return []
    return _range_hashes(_consistency_ranges(m, n), fetch)


def _is_hash(h: object) -> bool:
    return isinstance(h, bytes) and len(h) == HASH_SIZE


def _valid_proof(proof: object) -> bool:
    return isinstance(proof, Sequence) and all(_is_hash(p) for p in proof)


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes],
                     root_hash: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does ``path`` prove leaf hash ``leaf`` at ``index`` under
    ``root_hash`` of a tree of ``size`` leaves? False (never an exception) on bad input."""
    if not (_is_hash(leaf) and _is_hash(root_hash) and _valid_proof(path)):
        return False
    if index < 0 or index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


def verify_consistency(m: int, n: int, root_m: bytes, root_n: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: does ``proof`` show the tree of ``m`` leaves with head ``root_m`` is
    a prefix of the tree of ``n`` leaves with head ``root_n``? m == n needs an empty proof and
    equal heads; m == 0 an empty proof and the empty tree's head. False on bad input."""
    if not (_is_hash(root_m) and _is_hash(root_n) and _valid_proof(proof)):
        return False
    if m < 0 or n < m:
        return False
    if m == n:
        return len(proof) == 0 and root_m == root_n
    if m == 0:
        return len(proof) == 0 and root_m == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if m & (m - 1) == 0:  # m is a power of two: its root is a node of the bigger tree
        path.insert(0, root_m)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == root_m and sr == root_n and sn == 0


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """Reference MTH straight from RFC 9162 §2.1.1's recursion (for tests)."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return node_hash(root_from_leaves(leaf_hashes[:k]), root_from_leaves(leaf_hashes[k:]))


class Frontier:
    """The compact range of leaves [0, size): the roots of its decomposition, biggest first.
    Enough to append and to compute the tree head, in O(log n) memory."""

    def __init__(self) -> None:
        self.size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def from_nodes(cls, size: int, hashes: Iterable[bytes]) -> Frontier:
        """Restore from the hashes of ``subtrees(0, size)``, in that order."""
        got = list(hashes)
        if size < 0 or len(got) != size.bit_count() or not all(_is_hash(h) for h in got):
            raise ValueError(f"a frontier of {size} leaves needs {max(size, 0).bit_count()} "
                             "32-byte hashes")
        f = cls()
        f.size = size
        f._hashes = got
        return f

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add leaf hash ``leaf``; return every node it completes (level, idx, hash), the leaf
        itself first."""
        if not _is_hash(leaf):
            raise ValueError("a leaf hash is 32 bytes")
        idx, level, h = self.size, 0, leaf
        done = [(0, idx, leaf)]
        while idx & 1:
            h = node_hash(self._hashes.pop(), h)
            idx >>= 1
            level += 1
            done.append((level, idx, h))
        self._hashes.append(h)
        self.size += 1
        return done

    def nodes(self) -> list[tuple[int, int, bytes]]:
        """The decomposition: (level, idx, hash) of ``subtrees(0, size)``."""
        return [(lv, ix, h) for (lv, ix), h in zip(subtrees(0, self.size), self._hashes,
                                                     strict=True)]

    def root(self) -> bytes:
        return fold(self._hashes)
