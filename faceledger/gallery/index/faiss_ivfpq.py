"""``"ivfpq"``: IVF with 4-bit PQ fast-scan codes, re-ranked exactly from the float vectors.

A query scans ``nprobe`` of ``nlist`` inverted lists of short PQ codes (faiss
``IVF{nlist},PQ{m}x4fs``, inner product, residual codes), keeps the ``k * k_factor`` best
candidates and re-scores them against the stored float vectors, so the scores returned are exact
inner products. Parameters come from the ``ivfpq`` table in ``data/index_params.json`` by the
expected (or current) face count. Below the training size (``min_train`` vectors, and 32 per
list) the index holds the float vectors only and searches them exactly; it trains itself on them
when it reaches that size. Removal is physical: ids leave the PQ lists (the freed code slots are
zeroed) and their float vectors are overwritten.

Measured (bench/ivfpq_bench.py, galleries fitted to real dlib embeddings, one query thread, 2 shared
cores): 1M faces, IVF4096,PQ64x4fs, nprobe 512, F 100: recall@10 0.994 at 2.3 ms p50 (HNSW M 32
efSearch 128: 0.995 at 1.0 ms). 10M faces, IVF8192, nprobe 1024, F 400: 0.992 at 10.5 ms (HNSW
efSearch 1024: 0.992 at 16 ms); F 200: at most 0.983. The 4-bit codes rank these embeddings
(same person ~0.95 cosine, others up to ~0.9) coarsely, so recall is bought with F more than with
nprobe. Not the default: it misses the 10M target (recall@10 >= 0.99 at <= 5 ms p50). It builds
in minutes rather than an hour, deletes physically (HNSW keeps tombstones) and holds ~560 bytes
a face (HNSW ~792).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from faceledger.errors import ConflictError, ValidationError
from faceledger.gallery.index.base import (
    IdArray,
    IndexCapabilities,
    IndexFileError,
    ScoreArray,
    VectorArray,
    atomic_write,
    write_sidecar,
)
from faceledger.gallery.index.faiss_common import FaissIndex, faiss_module, sidecar_for
from faceledger.gallery.index.params import ivfpq_params
from faceledger.gallery.index.validation import check_ids, check_same_model, check_vectors

MIN_TRAIN = 20_000  # fewer vectors: exact search over the float store
TRAIN_POINTS_PER_LIST = 32  # k-means sample per list (and the least a list needs to train)
KMEANS_ITERATIONS = 10
ADD_BATCH = 100_000
MOVE_BLOCK = 1 << 16  # rows per block when shifting the float store in place
_FIXED = ("nlist", "m", "nprobe", "k_factor")


def _owned(a: np.ndarray, dtype: type) -> Any:
    """``a`` itself when it owns C-contiguous data of ``dtype`` (growable in place), else a copy."""
    if a.dtype == dtype and a.flags.owndata and a.flags.c_contiguous:
        return a
    return np.array(a, dtype=dtype)


def _move(a: np.ndarray, src: int, dst: int, count: int) -> None:
    """``a[dst:dst+count] = a[src:src+count]`` in bounded blocks (no whole-array temporary)."""
    if count <= 0 or src == dst:
        return
    if dst < src:
        for off in range(0, count, MOVE_BLOCK):
            c = min(MOVE_BLOCK, count - off)
            a[dst + off:dst + off + c] = a[src + off:src + off + c]
    else:
        for end in range(count, 0, -MOVE_BLOCK):
            lo = max(0, end - MOVE_BLOCK)
            a[dst + lo:dst + end] = a[src + lo:src + end]


class VectorStore:
    """Float vectors kept sorted by id in arrays grown in place (``realloc``, no second copy).

    No view of the arrays leaves this class, so growing them never leaves a dangling view.
    """

    def __init__(self, dim: int, ids: IdArray | None = None, vectors: VectorArray | None = None) -> None:
        self.dim = dim
        self._ids: IdArray = _owned(ids if ids is not None else np.empty(0), np.int64)
        self._vecs: VectorArray = _owned(vectors if vectors is not None else np.empty((0, dim)), np.float32)
        self.n = int(self._ids.shape[0])

    @property
    def nbytes(self) -> int:
        return self.n * (self.dim * 4 + 8)

    def ids(self) -> IdArray:
        return self._ids[:self.n].copy()

    def view(self) -> tuple[IdArray, VectorArray]:
        """The live rows (views: use under the index lock, never keep)."""
        return self._ids[:self.n], self._vecs[:self.n]

    def contains(self, ids: IdArray) -> np.ndarray:
        live = self._ids[:self.n]
        pos = np.minimum(np.searchsorted(live, ids), max(self.n - 1, 0))
        hit: np.ndarray = (live[pos] == ids) if self.n else np.zeros(ids.shape, dtype=bool)
        return hit

    def rows(self, ids: IdArray) -> IdArray:
        """Rows of ``ids`` (all present)."""
        rows: IdArray = np.searchsorted(self._ids[:self.n], ids).astype(np.int64)
        return rows

    def _reserve(self, need: int) -> None:
        cap = int(self._ids.shape[0])
        if need <= cap:
            return
        new = max(need, cap + cap // 4 + 1024)
        self._ids.resize((new,), refcheck=False)
        self._vecs.resize((new, self.dim), refcheck=False)

    def add(self, ids: IdArray, vectors: VectorArray) -> None:
        """Insert ``ids`` (ascending, none present) and their vectors, keeping id order."""
        n, m = self.n, int(ids.shape[0])
        self._reserve(n + m)
        if n == 0 or ids[0] > self._ids[n - 1]:
            self._ids[n:n + m], self._vecs[n:n + m] = ids, vectors
        else:
            pos = np.searchsorted(self._ids[:n], ids)
            end = n
            for i in range(m - 1, -1, -1):  # shift each old segment up past the new rows
                start = int(pos[i])
                _move(self._ids, start, start + i + 1, end - start)
                _move(self._vecs, start, start + i + 1, end - start)
                self._ids[start + i], self._vecs[start + i] = ids[i], vectors[i]
                end = start
        self.n = n + m

    def remove(self, ids: IdArray) -> None:
        """Delete ``ids`` (ascending, all present): later rows move down over them; the freed tail
        is zeroed, so no copy of a removed vector stays in memory here."""
        n, pos = self.n, np.searchsorted(self._ids[:self.n], ids)
        write = int(pos[0])
        for i, p in enumerate(pos.tolist()):
            end = int(pos[i + 1]) if i + 1 < len(pos) else n
            _move(self._ids, p + 1, write, end - p - 1)
            _move(self._vecs, p + 1, write, end - p - 1)
            write += end - p - 1
        self._vecs[write:n] = 0
        self._ids[write:n] = -1
        self.n = write


class IvfPqIndex(FaissIndex):
    """faiss ``IndexIVFPQFastScan`` (ids = face ids) plus a float store for the exact re-rank."""

    kind: ClassVar[str] = "ivfpq"
    capabilities: ClassVar[IndexCapabilities] = IndexCapabilities(
        exact=False, approximate=True, supports_remove=True, mmap=False
    )

    def __init__(self, model_id: str, dim: int, *, expected_count: int | None = None,
                 nlist: int | None = None, m: int | None = None, nprobe: int | None = None,
                 k_factor: int | None = None, min_train: int = MIN_TRAIN,
                 threads: int | None = None, seed: int = 1234) -> None:
        super().__init__(model_id, dim, threads=threads)
        for name, v in (("expected_count", expected_count), ("nlist", nlist), ("m", m),
                        ("nprobe", nprobe), ("k_factor", k_factor), ("min_train", min_train)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValidationError(f"{name} must be a positive integer, got {v!r}")
        self._expected, self._seed, self._min_train = expected_count, int(seed), int(min_train)
        self._fixed = {"nlist": nlist, "m": m, "nprobe": nprobe, "k_factor": k_factor}
        rule = ivfpq_params(expected_count or 0)
        self._nlist = nlist or rule.nlist
        self._m = self._fit_m(m or rule.m)
        self.nprobe = nprobe or rule.nprobe
        self.k_factor = k_factor or rule.k_factor
        self._store = VectorStore(self._dim)

    def _fit_m(self, m: int) -> int:
        """Sub-quantizers: ``m`` if it divides ``dim``, else the largest divisor below it."""
        if self._dim % m == 0:
            return m
        return max(d for d in range(1, min(m, self._dim) + 1) if self._dim % d == 0)

    # ----------------------------------------------------------------- properties
    @property
    def nlist(self) -> int:
        return self._nlist

    @property
    def m(self) -> int:
        return self._m

    @property
    def is_trained(self) -> bool:
        return self._index is not None

    @property
    def needs_rebuild(self) -> bool:
        """True once the face count has grown into a table row with twice the lists (or more)."""
        if self._index is None or self._fixed["nlist"] is not None:
            return False
        return ivfpq_params(self.count()).nlist >= 2 * self._nlist

    def _ready(self) -> bool:
        return True  # untrained: exact search over the float store

    def count(self) -> int:
        with self._lock:
            return self._store.n

    def ids(self) -> IdArray:
        with self._lock:
            return self._store.ids()

    def _collect_ids(self) -> IdArray:
        return self._store.ids()

    # ----------------------------------------------------------------- training
    def _train_size(self) -> int:
        return max(self._min_train, TRAIN_POINTS_PER_LIST * self._nlist)

    def _train_locked(self) -> None:
        if self._fixed["nlist"] is None:
            rule = ivfpq_params(max(self._expected or 0, self._store.n))
            self._nlist = rule.nlist
            self._m = self._fit_m(self._fixed["m"] or rule.m)
            self.nprobe = self._fixed["nprobe"] or rule.nprobe
            self.k_factor = self._fixed["k_factor"] or rule.k_factor
        ids, vecs = self._store.view()
        self._nlist = min(self._nlist, max(1, ids.size // TRAIN_POINTS_PER_LIST))
        limit = TRAIN_POINTS_PER_LIST * self._nlist
        sample = vecs
        if ids.size > limit:
            rng = np.random.default_rng(self._seed)
            sample = vecs[np.sort(rng.choice(ids.size, size=limit, replace=False))]
        faiss = faiss_module()
        index = faiss.index_factory(self._dim, f"IVF{self._nlist},PQ{self._m}x4fs",
                                    faiss.METRIC_INNER_PRODUCT)
        index.by_residual = True
        index.cp.spherical = True
        index.cp.niter = KMEANS_ITERATIONS
        index.cp.seed = self._seed
        index.cp.max_points_per_centroid = TRAIN_POINTS_PER_LIST
        index.train(np.ascontiguousarray(sample))
        del sample
        for start in range(0, ids.size, ADD_BATCH):
            index.add_with_ids(vecs[start:start + ADD_BATCH], ids[start:start + ADD_BATCH])
        self._index = index

    # ----------------------------------------------------------------- operations
    def add(self, ids: IdArray, vectors: VectorArray, *, model_id: str | None = None) -> None:
        check_same_model(self._model_id, model_id, "add embeddings to this index")
        vecs = check_vectors(vectors, self._dim)
        new_ids = check_ids(ids, vecs.shape[0])
        if new_ids.size == 0:
            return
        order = np.argsort(new_ids, kind="stable")
        new_ids, vecs = new_ids[order], vecs[order]
        if np.any(new_ids[1:] == new_ids[:-1]):
            raise ValidationError("ids contain duplicates")
        with self._lock:
            clash = new_ids[self._store.contains(new_ids)]
            if clash.size:
                raise ConflictError(
                    f"{clash.size} id(s) are already in the index, e.g. {int(clash[0])}; remove them first",
                    ids=clash[:10].tolist(),
                )
            try:
                if self._index is not None:
                    self._index.add_with_ids(vecs, new_ids)
                self._store.add(new_ids, vecs)
            except BaseException:
                if self._index is not None:
                    self._index.remove_ids(new_ids)  # undo a partial add
                raise
            if self._index is None and self._store.n >= self._train_size():
                self._train_locked()

    def remove(self, ids: IdArray) -> int:
        gone = np.unique(check_ids(ids))
        with self._lock:
            gone = gone[self._store.contains(gone)]
            if gone.size == 0:
                return 0
            if self._index is not None:
                _, lists = self._index.quantizer.search(self._store.view()[1][self._store.rows(gone)], 1)
                removed = int(self._index.remove_ids(gone))
                if removed != gone.size:
                    raise IndexFileError(f"ivfpq index lost track of ids: removed {removed} of {gone.size}")
                self._scrub(np.unique(lists.ravel()))
            self._store.remove(gone)
            return int(gone.size)

    def _scrub(self, lists: np.ndarray) -> None:
        """Zero the code slots past the end of ``lists``' last blocks: faiss leaves a removed
        entry's code there when it was the list's last one."""
        faiss = faiss_module()
        inv = faiss.downcast_InvertedLists(self._index.invlists)
        packer, zero = inv.packer, np.zeros(int(inv.packer.code_size), dtype=np.uint8)
        per = int(inv.n_per_block)
        for list_no in lists.tolist():
            if list_no < 0:
                continue
            size = int(inv.list_size(list_no))
            blocks = math.ceil(size / per)
            if size % per == 0:
                continue
            codes = inv.get_codes(list_no)  # the list's own buffer: overwritten in place
            for slot in range(size, blocks * per):
                packer.pack_1_c(faiss.swig_ptr(zero), slot, codes)

    def _raw_search(self, q: VectorArray, k: int) -> tuple[ScoreArray, IdArray]:
        ids, vecs = self._store.view()
        if self._index is None:
            cands = np.broadcast_to(ids, (q.shape[0], ids.size))
        else:
            kk = min(k * self.k_factor, ids.size)
            params = faiss_module().SearchParametersIVF(nprobe=min(self.nprobe, self._nlist))
            _, cands = self._index.search(q, kk, params=params)
        scores = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        out = np.full((q.shape[0], k), -1, dtype=np.int64)
        for i in range(q.shape[0]):
            c = cands[i][cands[i] >= 0]
            s = vecs @ q[i] if self._index is None else vecs[self._store.rows(c)] @ q[i]
            top = np.argpartition(-s, k - 1)[:k] if s.size > k else np.arange(s.size)
            top = top[np.argsort(-s[top], kind="stable")]
            scores[i, :top.size], out[i, :top.size] = s[top], c[top]
        return scores, out

    # ----------------------------------------------------------------- persistence
    def serialized_size(self) -> int:
        with self._lock:
            pq = 0 if self._index is None else int(faiss_module().serialize_index(self._index).nbytes)
            return pq + self._store.nbytes

    def _params(self) -> dict[str, Any]:
        return {"nlist": self._nlist, "m": self._m, "nprobe": self.nprobe, "k_factor": self.k_factor,
                "min_train": self._min_train, "expected_count": self._expected,
                "trained": self._index is not None, "seed": self._seed,
                "fixed": {k: v for k, v in self._fixed.items() if v is not None}}

    def save(self, path: Path) -> None:
        """One ``.npz`` (ids, float vectors, serialised faiss index) plus the sidecar."""
        path = Path(path)
        faiss = faiss_module()
        with self._lock:
            ids, vecs = self._store.view()
            pq = (np.empty(0, dtype=np.uint8) if self._index is None
                  else faiss.serialize_index(self._index))

            def write(tmp: Path) -> None:
                with open(tmp, "wb") as fh:
                    np.savez(fh, ids=ids, vectors=vecs, ivf=pq)

            atomic_write(path, write)
            write_sidecar(path, {"kind": self.kind, "model_id": self._model_id, "dim": self._dim,
                                 "count": int(ids.size), "bytes": path.stat().st_size,
                                 "params": self._params()})

    def _check_loaded(self, index: Any) -> Any:
        faiss = faiss_module()
        if not isinstance(index, faiss.IndexIVFPQFastScan) or index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise IndexFileError(f"expected an inner-product IndexIVFPQFastScan, got {type(index).__name__}")
        return index

    @classmethod
    def load(cls, path: Path, mmap: bool = False) -> IvfPqIndex:
        """Read a saved index (into memory: ``mmap`` is not supported and ignored)."""
        path = Path(path)
        meta = sidecar_for(path, cls.kind)
        p, fixed = meta.get("params") or {}, (meta.get("params") or {}).get("fixed") or {}
        obj = cls(meta["model_id"], meta["dim"], expected_count=p.get("expected_count"),
                  min_train=int(p.get("min_train", MIN_TRAIN)), seed=int(p.get("seed", 1234)),
                  **{k: int(v) for k, v in fixed.items() if k in _FIXED})
        try:
            if path.stat().st_size != meta["bytes"]:
                raise IndexFileError(f"index file {path} has {path.stat().st_size} bytes but its sidecar "
                                     f"says {meta['bytes']}", path=str(path))
            with np.load(path, allow_pickle=False) as z:
                ids, vecs, raw = z["ids"], z["vectors"], z["ivf"]
        except (OSError, ValueError, KeyError) as exc:
            raise IndexFileError(f"index file {path} is unreadable: {exc}", path=str(path)) from exc
        if vecs.shape != (meta["count"], obj._dim) or ids.shape != (meta["count"],):
            raise IndexFileError(f"index file {path} holds {vecs.shape} vectors but its sidecar says "
                                 f"{meta['count']} x {obj._dim}", path=str(path))
        if ids.size and (int(ids[0]) < 0 or np.any(ids[1:] <= ids[:-1])):
            raise IndexFileError(f"index file {path}: ids are not unique and ascending", path=str(path))
        obj._store = VectorStore(obj._dim, ids, vecs)
        if raw.size:
            try:
                index = obj._check_loaded(faiss_module().deserialize_index(raw))
            except RuntimeError as exc:
                raise IndexFileError(f"index file {path} is unreadable: {exc}", path=str(path)) from exc
            if int(index.ntotal) != meta["count"] or int(index.d) != obj._dim:
                raise IndexFileError(f"index file {path}: PQ lists hold {index.ntotal} x {index.d}, "
                                     f"the sidecar says {meta['count']} x {obj._dim}", path=str(path))
            obj._index, obj._nlist, obj._m = index, int(index.nlist), int(index.pq.M)
        obj.nprobe, obj.k_factor = int(p.get("nprobe", obj.nprobe)), int(p.get("k_factor", obj.k_factor))
        return obj
