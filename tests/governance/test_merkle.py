"""RFC 9162 Merkle hashing, proofs and verification (faceledger/governance/merkle.py), pure.

Reference vectors: transparency-dev/merkle (Apache-2.0), testonly/constants.go (LeafInputs,
RootHashes, NodeHashes) and proof/verify_test.go (inclusionProofs, consistencyProofs), the Go
reference implementation of RFC 6962/9162 Merkle trees used by Certificate Transparency."""

from __future__ import annotations

import hashlib
import random

import pytest

from faceledger.governance import merkle

LEAF_INPUTS = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
               "606162636465666768696a6b6c6d6e6f"]
ROOTS = [  # tree sizes 1..8
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, tree size, path) and (size1, size2, proof) from proof/verify_test.go
INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(8, "big")) for i in range(n)]


def _store(leaves: list[bytes]) -> dict[tuple[int, int], bytes]:
    """Every complete aligned subtree, built through Frontier.append (as the SQL store is)."""
    f = merkle.Frontier()
    nodes: dict[tuple[int, int], bytes] = {}
    for leaf in leaves:
        nodes.update({(lv, ix): h for lv, ix, h in f.append(leaf)})
    return nodes


class CountingFetch:
    def __init__(self, nodes: dict[tuple[int, int], bytes]) -> None:
        self.nodes = nodes
        self.calls = 0

    def __call__(self, keys: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        self.calls += 1
        return {k: self.nodes[k] for k in keys if k in self.nodes}


REF_LEAVES = [merkle.leaf_hash(bytes.fromhex(x)) for x in LEAF_INPUTS]
REF_FETCH = CountingFetch(_store(REF_LEAVES))


def test_reference_roots_match_the_go_implementation() -> None:
    assert merkle.EMPTY_ROOT.hex() == hashlib.sha256(b"").hexdigest()
    assert merkle.root(0, REF_FETCH) == merkle.EMPTY_ROOT
    for size, want in enumerate(ROOTS, start=1):
        assert merkle.root_from_leaves(REF_LEAVES[:size]).hex() == want
        assert merkle.root(size, REF_FETCH).hex() == want


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_reference_inclusion_proofs(index: int, size: int, path: list[str]) -> None:
    got = merkle.inclusion_proof(index, size, REF_FETCH)
    assert [h.hex() for h in got] == path
    root = bytes.fromhex(ROOTS[size - 1])
    assert merkle.verify_inclusion(REF_LEAVES[index], index, size, got, root)


@pytest.mark.parametrize(("m", "n", "proof"), CONSISTENCY)
def test_reference_consistency_proofs(m: int, n: int, proof: list[str]) -> None:
    got = merkle.consistency_proof(m, n, REF_FETCH)
    assert [h.hex() for h in got] == proof
    assert merkle.verify_consistency(m, n, bytes.fromhex(ROOTS[m - 1]), bytes.fromhex(ROOTS[n - 1]),
                                     got)


def test_roots_for_sizes_0_to_70_and_a_few_big_ones() -> None:
    leaves = _leaves(1500)
    fetch = CountingFetch(_store(leaves))
    f = merkle.Frontier()
    for n in [*range(71), 127, 128, 129, 1000, 1023, 1024, 1025, 1500]:
        want = merkle.root_from_leaves(leaves[:n])
        assert merkle.root(n, fetch) == want, n
        while f.size < n:
            f.append(leaves[f.size])
        assert f.root() == want, n
        assert [(lv, ix) for lv, ix, _ in f.nodes()] == merkle.subtrees(0, n)
        restored = merkle.Frontier.from_nodes(n, [h for _, _, h in f.nodes()])
        assert restored.root() == want


def test_frontier_append_reports_every_completed_node() -> None:
    f = merkle.Frontier()
    for i in range(7):
        f.append(_leaves(8)[i])
    done = f.append(_leaves(8)[7])
    assert [(lv, ix) for lv, ix, _ in done] == [(0, 7), (1, 3), (2, 1), (3, 0)]
    assert done[-1][2] == merkle.root_from_leaves(_leaves(8))
    with pytest.raises(ValueError):
        merkle.Frontier.from_nodes(3, [merkle.EMPTY_ROOT])  # size 3 needs two hashes
    with pytest.raises(ValueError):
        f.append(b"short")


def test_subtrees_decompose_recursion_ranges() -> None:
    assert merkle.subtrees(0, 0) == []
    assert merkle.subtrees(0, 13) == [(3, 0), (2, 2), (0, 12)]
    assert merkle.subtrees(8, 14) == [(2, 2), (1, 6)]
    assert merkle.subtrees(3, 8) == [(0, 3), (2, 1)]  # unaligned start: left edge grows
    with pytest.raises(ValueError):
        merkle.subtrees(5, 4)


def test_every_inclusion_proof_up_to_40_verifies_and_is_one_fetch() -> None:
    leaves = _leaves(40)
    fetch = CountingFetch(_store(leaves))
    for n in range(1, 41):
        root = merkle.root_from_leaves(leaves[:n])
        for i in range(n):
            before = fetch.calls
            path = merkle.inclusion_proof(i, n, fetch)
            assert fetch.calls - before == (1 if path else 0)
            assert merkle.verify_inclusion(leaves[i], i, n, path, root), (i, n)
            assert not merkle.verify_inclusion(leaves[(i + 1) % n], i, n, path, root) or n == 1


def test_every_consistency_proof_up_to_40_verifies() -> None:
    leaves = _leaves(40)
    fetch = CountingFetch(_store(leaves))
    roots = [merkle.root_from_leaves(leaves[:n]) for n in range(41)]
    for n in range(41):
        for m in range(n + 1):
            proof = merkle.consistency_proof(m, n, fetch)
            assert merkle.verify_consistency(m, n, roots[m], roots[n], proof), (m, n)
            if 0 < m < n:
                assert not merkle.verify_consistency(m, n, roots[m - 1] if m > 1 else roots[2],
                                                     roots[n], proof), (m, n)
                assert not merkle.verify_consistency(m, n, roots[m], roots[n - 1], proof), (m, n)


def _flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 16]) + h[1:]


def test_tampered_inclusion_proofs_fail() -> None:
    rng = random.Random(7)
    leaves = _leaves(300)
    fetch = CountingFetch(_store(leaves))
    for _ in range(60):
        n = rng.randint(2, 300)
        i = rng.randrange(n)
        root = merkle.root_from_leaves(leaves[:n])
        path = merkle.inclusion_proof(i, n, fetch)
        assert merkle.verify_inclusion(leaves[i], i, n, path, root)
        bad = [
            (leaves[i], i, n, path, _flip(root)),
            (_flip(leaves[i]), i, n, path, root),
            (leaves[i], i, n * 2, path, root),
            (leaves[i], i, n, [*path, root], root),
            (leaves[i], i, n, [root, *path], root),
            (leaves[i], i, n, path[:-1], root),
            (leaves[i], n, n, path, root),
            (leaves[i], -1, n, path, root),
            *[(leaves[i], i, n, [*path[:k], _flip(path[k]), *path[k + 1:]], root)
              for k in range(len(path))],
        ]
        if i + 1 < n:
            bad.append((leaves[i], i + 1, n, path, root))
        for args in bad:
            assert not merkle.verify_inclusion(*args), (i, n)


def test_tampered_consistency_proofs_fail() -> None:
    rng = random.Random(11)
    leaves = _leaves(300)
    fetch = CountingFetch(_store(leaves))
    for _ in range(60):
        n = rng.randint(3, 300)
        m = rng.randint(1, n - 1)
        rm, rn = merkle.root_from_leaves(leaves[:m]), merkle.root_from_leaves(leaves[:n])
        proof = merkle.consistency_proof(m, n, fetch)
        assert merkle.verify_consistency(m, n, rm, rn, proof)
        bad = [
            (m, n, rn, rm, proof), (m, n, _flip(rm), rn, proof), (m, n, rm, _flip(rn), proof),
            (m, n, rm, rn, []), (m, n, rm, rn, proof[:-1]), (m, n, rm, rn, [*proof, rn]),
            (m, n, rm, rn, [rm, *proof]), (m, n * 2, rm, rn, proof), (m + 1, n, rm, rn, proof),
            (n, m, rm, rn, proof),
            *[(m, n, rm, rn, [*proof[:k], _flip(proof[k]), *proof[k + 1:]])
              for k in range(len(proof))],
        ]
        if m > 1:
            bad.append((m - 1, n, rm, rn, proof))
        for args in bad:
            assert not merkle.verify_consistency(*args), (m, n)


def test_edge_cases_give_false_not_exceptions() -> None:
    r1 = merkle.root_from_leaves(_leaves(1))
    assert merkle.verify_inclusion(r1, 0, 1, [], r1)
    assert not merkle.verify_inclusion(r1, 0, 0, [], r1)
    assert not merkle.verify_inclusion(r1, 1, 1, [], r1)
    assert not merkle.verify_inclusion(b"", 0, 1, [], r1)
    assert not merkle.verify_inclusion(r1, 0, 1, [], b"x")
    assert not merkle.verify_inclusion(r1, 0, 2, [b"short"], r1)
    assert merkle.verify_consistency(0, 0, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, [])
    assert merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, r1, [])
    assert not merkle.verify_consistency(0, 5, r1, r1, [])
    assert not merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, r1, [r1])
    assert merkle.verify_consistency(3, 3, r1, r1, [])
    assert not merkle.verify_consistency(3, 3, r1, merkle.EMPTY_ROOT, [])
    assert not merkle.verify_consistency(3, 3, r1, r1, [r1])
    assert not merkle.verify_consistency(4, 3, r1, r1, [r1])
    assert not merkle.verify_consistency(1, 2, r1, r1, [b"\x00" * 31])
    assert not merkle.verify_consistency(1, 2, b"", r1, [r1])


def test_proof_requests_out_of_range_raise_and_missing_nodes_are_named() -> None:
    with pytest.raises(ValueError):
        merkle.inclusion_proof(5, 5, REF_FETCH)
    with pytest.raises(ValueError):
        merkle.consistency_proof(6, 5, REF_FETCH)
    with pytest.raises(KeyError, match="missing"):
        merkle.root(9, REF_FETCH)  # only 8 leaves stored
