"""How much of a person an opt-out withholds, and how many other people with them (never run by
the tests).

    .venv/bin/python bench/optout_bench.py /tmp/calib/lfw.npz [--fnmr 0.01] [--threshold T]
        [--min-images 5] [--photos 1,2,3] [--out bench/results/optout.json]

Input: an embedding cache of LFW made by faceledger's own pipeline (``faceledger evaluate`` /
``calibrate --cache``: keys paths, vectors, detected; the identity is the path's folder). The
gallery is every image with a detected face. For each person with ``--min-images`` or more such
images, every one of their images in turn is the opt-out photo (with ``--photos 2``, that image and
the next one of the same person), and the opt-out withholds each gallery face whose similarity to
any of its photos is at or above the threshold, exactly as ``faceledger.gallery.optout`` does.

Reported per opt-out size: the share of the person's *other* photos withheld (pooled over all
opt-outs, and per person: the mean over people and the share of people below 95%), and the other
people's faces withheld per opt-out (mean, median, 95th percentile, max) and as a share of the
gallery. The threshold is the packaged calibration's threshold at ``--fnmr`` (the product's rule,
FACELEDGER_OPTOUT_FNMR) unless ``--threshold`` is given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from faceledger.governance.calibration import CalibrationInfo, packaged_defaults, threshold_for_fnmr


def packaged_threshold(fnmr: float, model_id: str = "dlib-resnet-v1") -> float:
    row = next(r for r in packaged_defaults() if r["model_id"] == model_id)
    info = CalibrationInfo(0, model_id, row["threshold"], row["target_fmr"], row.get("gallery_size"),
                           row["dataset"], row.get("details", {}))
    t = threshold_for_fnmr(info, fnmr)
    if t is None:
        raise SystemExit(f"the packaged calibration has no threshold for FNMR {fnmr:g}")
    return t


def load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = np.load(path, allow_pickle=False)
    ok = data["detected"].astype(bool) & np.isfinite(data["vectors"]).all(axis=1)
    if "errors" in data.files:
        ok &= np.char.str_len(data["errors"].astype(str)) == 0
    people = np.array([str(p).split("/")[0] for p in data["paths"][ok]])
    return data["vectors"][ok].astype(np.float32), people


def measure(vectors: np.ndarray, people: np.ndarray, threshold: float, min_images: int,
            n_photos: int) -> dict[str, Any]:
    ids = np.unique(people, return_inverse=True)[1]
    counts = np.bincount(ids)
    own_rates: list[float] = []
    per_person: list[float] = []
    others: list[int] = []
    withheld_own = total_own = 0
    for pid in np.flatnonzero(counts >= min_images):
        mine = np.flatnonzero(ids == pid)
        rates = []
        for j in range(len(mine)):
            photos = mine[[(j + t) % len(mine) for t in range(n_photos)]]
            best = (vectors @ vectors[photos].T).max(axis=1)
            hit = best >= threshold
            rest = np.setdiff1d(mine, photos)
            got = int(hit[rest].sum())
            withheld_own += got
            total_own += len(rest)
            rates.append(got / len(rest))
            others.append(int(hit.sum() - hit[mine].sum()))
        own_rates += rates
        per_person.append(float(np.mean(rates)))
    other = np.asarray(others)
    pp = np.asarray(per_person)
    gallery = len(vectors)
    return {
        "photos_per_optout": n_photos, "optouts": len(own_rates), "people": len(per_person),
        "own_withheld_pooled": withheld_own / total_own,
        "own_withheld_mean_per_person": float(pp.mean()),
        "people_below_95pct": int((pp < 0.95).sum()),
        "optouts_withholding_all_own": float(np.mean(np.asarray(own_rates) == 1.0)),
        "others_withheld_mean": float(other.mean()), "others_withheld_median": float(np.median(other)),
        "others_withheld_p95": float(np.percentile(other, 95)), "others_withheld_max": int(other.max()),
        "others_withheld_share_of_gallery": float(other.mean() / gallery),
        "optouts_withholding_no_one_else": float(np.mean(other == 0)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cache", type=Path, help="LFW embedding cache (.npz) made by faceledger")
    ap.add_argument("--fnmr", type=float, default=0.01, help="the product rule's FNMR (default 0.01)")
    ap.add_argument("--threshold", type=float, default=None, help="override the threshold")
    ap.add_argument("--min-images", type=int, default=5)
    ap.add_argument("--photos", default="1,2,3", help="opt-out sizes to measure")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    threshold = args.threshold if args.threshold is not None else packaged_threshold(args.fnmr)
    vectors, people = load(args.cache)
    report = {"cache": str(args.cache), "gallery_faces": len(vectors),
              "identities": len(set(people.tolist())), "threshold": threshold,
              "rule": (f"packaged calibration at FNMR {args.fnmr:g}" if args.threshold is None
                       else "given"), "min_images": args.min_images,
              "runs": [measure(vectors, people, threshold, args.min_images, int(n))
                       for n in args.photos.split(",")]}
    print(f"gallery {report['gallery_faces']:,} faces of {report['identities']:,} people; threshold "
          f"{threshold:.6f} ({report['rule']})")
    for r in report["runs"]:
        print(f"{r['photos_per_optout']} photo(s): {r['optouts']:,} opt-outs of {r['people']} people "
              f"with {args.min_images}+ images: own other photos withheld "
              f"{100 * r['own_withheld_pooled']:.2f}% "
              f"pooled, {100 * r['own_withheld_mean_per_person']:.2f}% mean per person "
              f"({r['people_below_95pct']} people below 95%); other people's faces withheld per opt-out: "
              f"mean {r['others_withheld_mean']:.1f}, median {r['others_withheld_median']:.0f}, "
              f"p95 {r['others_withheld_p95']:.0f}, max {r['others_withheld_max']} "
              f"({100 * r['others_withheld_share_of_gallery']:.3f}% of the gallery; "
              f"{100 * r['optouts_withholding_no_one_else']:.1f}% of opt-outs withhold no one else)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
