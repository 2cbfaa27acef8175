"""`make bench`: every benchmark, side by side, into bench/results/REPORT.md (never run by tests).

    python bench/run_all.py --lfw ../shared/facedata/lfw [--full] [--jitters 0,10] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PY = sys.executable


def run(args: list[str], log: Path) -> None:
    print("$", " ".join(args), flush=True)
    with log.open("a") as fh:
        subprocess.run(args, check=True, stdout=fh, stderr=subprocess.STDOUT, cwd=HERE.parent)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    except OSError:
        mem = 0
    versions = {}
    for mod in ("numpy", "faiss", "dlib", "sqlalchemy", "fastapi"):
        try:
            versions[mod] = __import__(mod).__version__
        except (ImportError, AttributeError):
            versions[mod] = "?"
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                            text=True, cwd=HERE.parent).stdout.strip()
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "memory_mib": mem,
            "os": platform.platform(), "python": platform.python_version(),
            "versions": versions, "commit": commit, "date": datetime.now(UTC).isoformat()}


def md_table(headers: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def ledger_section(d: dict[str, Any]) -> str:
    """The Merkle log: append cost, proofs at scale, full vs incremental verify, pymerkle."""
    parts = ["## Ledger Merkle tree (RFC 9162)\n\nAppends through `ledger.append` on a SQLite "
             "file, with the tree kept in the same transaction vs without, alternating rounds:\n\n"
             + md_table(["mode", "appends", "with tree /s", "without /s", "slower"],
                        [[a["mode"], a["appends"], a["with_tree_per_s"], a["without_tree_per_s"],
                          f"{a['slowdown_pct']}%"] for a in d["appends"]]),
             "Tree head and proofs (stored tiles of 64 entries, the levels below recomputed "
             "from the entries), 1000 random queries:\n\n"
             + md_table(["entries", "tree rows", "database MB (entries + tree)",
                         "head p50 ms", "inclusion p50 / p99 ms",
                         "inclusion B", "consistency p50 / p99 ms", "consistency B (max)"],
                        [[f"{p['entries']:,}", f"{p.get('tree_rows', 0):,}",
                          round(p["db_bytes"] / 2**20), p["root"]["p50_ms"],
                          f"{p['inclusion']['p50_ms']} / {p['inclusion']['p99_ms']}",
                          p["inclusion"]["bytes"],
                          f"{p['consistency']['p50_ms']} / {p['consistency']['p99_ms']}",
                          p["consistency"]["bytes_max"]] for p in d["proofs"]])]
    v = d.get("verify")
    if v:
        parts.append(f"Verify {v['entries']:,} entries: full walk {v['full_verify_s']} s; "
                     f"incremental (the last {v['incremental_entries']} after a checkpoint, "
                     f"Frontier restored from the tree) {v['incremental_s']} s.")
    if d.get("pymerkle"):
        parts.append("Against pymerkle (same entries, sha256, RFC 9162 hashing):\n\n" + md_table(
            ["system", "entries", "appends/s", "head p50 ms", "inclusion p50 / p99 ms",
             "consistency p50 / p99 ms"],
            [[r["system"], f"{r['entries']:,}", r["append_per_s"], r["root"]["p50_ms"],
              f"{r['inclusion']['p50_ms']} / {r['inclusion']['p99_ms']}",
              f"{r['consistency']['p50_ms']} / {r['consistency']['p99_ms']}"]
             for r in d["pymerkle"]]))
    return "\n\n".join(parts)


def onnx_embed_section(d: dict[str, Any]) -> str:
    """dlib's ResNet on dlib-bin vs ONNX Runtime: ms/face and agreement (issue 14, part 1)."""
    a = d["agreement"]
    return (f"## Embedding: dlib-bin vs ONNX Runtime ({d['dataset']})\n\n"
            + md_table(["runtime", "threads", "batch", "ms/face", "x dlib-bin"],
                       [[r["runtime"], r["threads"], r["batch"], r["ms_per_face"],
                         r.get("speedup_vs_dlib", "")] for r in d["rows"]])
            + f"\n\nAgreement on {a['faces']} faces: max euclidean difference "
            f"{a['max_euclidean']:.2e}, max abs {a['max_abs_diff']:.2e}, min cosine "
            f"{a['min_cosine']:.7f}; {a['decisions_changed']} of {a['decisions']:,} same/different "
            f"decisions changed ({a['pairs']:,} pairs x {len(a['thresholds'])} calibrated "
            "thresholds).")


def report(out: Path, m: dict[str, Any]) -> str:
    parts = [f"# faceledger benchmark report\n\nMachine: {m['cpu']}, {m['cores']} cores, "
             f"{m['memory_mib']} MiB, {m['os']}, Python {m['python']}; "
             f"{json.dumps(m['versions'])}; commit {m['commit']}; {m['date']}\n"]
    ing = out / "ingest.json"
    if ing.exists():
        d = json.loads(ing.read_text())
        parts.append(f"## Ingest throughput ({d['dataset']}, side by side in one run)\n\n" + md_table(
            ["system", "images", "faces", "s", "images/s", "faces/s", "x face_recognition (1 proc)"],
            [[r["name"], r["images"], r["faces"], r["seconds"], r["images_per_s"], r["faces_per_s"],
              r["speedup_vs_face_recognition_1proc"]] for r in d["rows"]]))
        fl = d["rows"][0]
        parts.append(f"Storage per face: database {fl.get('db_bytes_per_face')} B, thumbnail "
                     f"{fl.get('thumbnail_bytes_per_face')} B.")
    srch = out / "search.json"
    if srch.exists():
        d = json.loads(srch.read_text())
        rows = d["results"]
        cos = next(iter(d["data"].get("cosines", {}).values()), {})
        shape = (f"{d['data'].get('centers')}; same-person cosine {cos.get('same_cos_mean', 0):.3f},"
                 f" different {cos.get('diff_cos_mean', 0):.3f}")
        parts.append(f"## Vector search (synthetic galleries: {shape})\n\n"
                     "Single-query latency on one thread; recall@10 against exact search.\n\n"
                     + md_table(["N", "index", "build s", "MB", "bytes/face", "p50 ms", "p99 ms",
                                 "recall@10"],
                                [[f"{r['size']:,}", r["index"] + (" (default)" if
                                  r["picked_by_build_index"] else ""), r["build_s"],
                                  round(r["index_bytes"] / 2**20), round(r["index_bytes"] / r["size"]),
                                  r["p50_ms"], r["p99_ms"], r["recall_at_10"]] for r in rows]))
    api = out / "api.json"
    if api.exists():
        d = json.loads(api.read_text())
        mt = d["match_in_process"]
        parts.append(f"## Search on the LFW gallery ({d['gallery_faces']:,} faces)\n\n"
                     f"Match only (index search, in process): p50 {mt['p50_ms']} ms, p99 "
                     f"{mt['p99_ms']} ms over {mt['queries']} queries.\n\nEnd to end over HTTP "
                     "(upload probe, decode, detect, embed, match, ledger, JSON), loopback:\n\n"
                     + md_table(["clients", "requests", "errors", "p50 ms", "p99 ms", "req/s"],
                                [[r["clients"], r["requests"], r["errors"], r["p50_ms"], r["p99_ms"],
                                  r["throughput_rps"]] for r in d["http"]]))
    for acc in sorted(out.glob("accuracy-j*.json"), key=lambda p: int(p.stem.split("-j")[1])):
        d = json.loads(acc.read_text())
        v, fb = d["verify"], d["verify"]["fallback"]
        tar = v["tar_at_far"]
        parts.append(
            f"## Accuracy (LFW, through the product pipeline; {v['protocol']})\n\n"
            + md_table(["figure", "value"], [
                ["pipeline", f"{d['model'].get('detector')}; jitters {d['model'].get('jitters')}"],
                ["accuracy (mean ± std over folds)",
                 f"{100 * v['accuracy']['mean']:.2f}% ± {100 * v['accuracy']['std']:.2f}"],
                ["published", f"{100 * v['published_accuracy']:.2f}%"
                 if v["published_accuracy"] else "n/a"],
                ["ROC AUC / EER", f"{v['auc']:.5f} / {100 * v['eer']:.2f}%"],
                *[[f"TAR at FAR {k}", f"{100 * t['tar']:.2f}%"] for k, t in tar.items()],
                ["pair images the detector missed (rescued by)",
                 f"{fb['pair_images_with_fallback']} of {fb['pair_images']} "
                 f"({json.dumps(fb['pair_images_by_rescue'])})"]]))
    led = out / "ledger.json"
    if led.exists():
        parts.append(ledger_section(json.loads(led.read_text())))
    onnx = out / "onnx_embed.json"
    if onnx.exists():
        parts.append(onnx_embed_section(json.loads(onnx.read_text())))
    for name, title in (("pg_ledger.json", "Ledger appends/s, concurrent writer processes"),
                        ("milvus.json", "Search at 1M faces: embedded faiss vs Milvus Lite")):
        f = out / name
        if f.exists():
            d = json.loads(f.read_text())
            parts.append(f"## {title}\n\n`{d['command']}`\n\n{d['markdown']}")
    text = "\n\n".join(parts) + "\n"
    (out / "REPORT.md").write_text(text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lfw", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--limit", type=int, default=2000, help="images for the ingest comparison")
    ap.add_argument("--full", action="store_true",
                    help="also 10M vectors (~1 h of HNSW build on 2 cores, ~9 GB peak)")
    ap.add_argument("--jitters", default="0", help="comma list: LFW verification with each "
                    "number of jitters (10 takes ~10x the embedding time: ~1 h on 2 cores)")
    ap.add_argument("--skip", default="", help="comma list of: ingest,search,api,ledger,"
                    "pgledger,milvus,accuracy,onnx")
    args = ap.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    log = out / "bench.log"
    skip = set(args.skip.split(","))
    npz = out / "lfw_embeddings.npz"
    if "ingest" not in skip:
        run([PY, str(HERE / "ingest_bench.py"), "--lfw", str(args.lfw), "--limit",
             str(args.limit), "--out", str(out)], log)
    if not npz.exists():
        run([PY, str(HERE / "embed_lfw.py"), "--lfw", str(args.lfw), "--out", str(npz)], log)
    if "search" not in skip:
        sizes = "10000,100000,1000000" + (",10000000" if args.full else "")
        run([PY, str(HERE / "search_bench.py"), "--sizes", sizes, "--fit", str(npz),
             "--queries", "500", "--out", str(out / "search.json")], log)
    if "api" not in skip:
        run([PY, str(HERE / "api_bench.py"), "--lfw", str(args.lfw), "--embeddings", str(npz),
             "--out", str(out)], log)
    if "ledger" not in skip:
        run([PY, str(HERE / "ledger_bench.py"), "--out", str(out)], log)
    if "pgledger" not in skip:
        run([PY, str(HERE / "pg_ledger_bench.py"), "--out", str(out)], log)
    if args.full and "milvus" not in skip:  # ~45 min on 2 cores
        run([PY, str(HERE / "milvus_bench.py"), "--sizes", "1000000", "--fit", str(npz),
             "--queries", "200", "--milvus-efs", "128", "--out", str(out)], log)
    for jitters in [] if "accuracy" in skip else [int(j) for j in args.jitters.split(",")]:
        cmd = [PY, "-m", "faceledger", "eval", "verify", "--lfw", str(args.lfw), "--json",
               "--jitters", str(jitters), "--cache", str(out / f"eval-cache-j{jitters}.npz"),
               "--out", str(out / f"card-j{jitters}")]
        print("$", " ".join(cmd), flush=True)
        with log.open("a") as err:
            done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True,
                                  cwd=HERE.parent)
        if done.returncode == 0:
            (out / f"accuracy-j{jitters}.json").write_text(done.stdout)
        else:
            print("accuracy evaluation failed; see bench.log", file=sys.stderr)
    if "onnx" not in skip:
        run([PY, str(HERE / "onnx_embed_bench.py"), "--lfw", str(args.lfw), "--limit", "300",
             "--out", str(out / "onnx_embed.json")], log)
    print(report(out, machine()))


if __name__ == "__main__":
    main()
