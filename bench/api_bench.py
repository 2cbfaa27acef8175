"""End-to-end API search latency (upload probe -> candidates) on the LFW gallery, over loopback,
with 1 and 8 concurrent clients; plus the in-process match latency on the same gallery.

    python bench/api_bench.py --lfw ../shared/facedata/lfw --embeddings bench/results/lfw_embeddings.npz

``--upsample auto,1`` serves the same gallery once per FACELEDGER_UPSAMPLE value, one after the
other in the same run. Each row also gives the server's CPU time per search (from /proc: what a
search cost the server, whatever else shares the cores).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lfw_gallery import build_gallery, load_npz

from faceledger.accounts import users as accounts


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values), q)), 2)


def match_latency(app: Any, vecs: np.ndarray, n: int = 1000) -> dict[str, float]:
    times = []
    for v in vecs[:n]:
        t = time.perf_counter()
        app.indexes.search(app.model_id, 1, v, 20)
        times.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": pct(times, 50), "p99_ms": pct(times, 99), "queries": len(times)}


def run_clients(url: str, token: str, probes: list[bytes], clients: int, per_client: int
                ) -> dict[str, Any]:
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    fields = {"case": "BENCH-1", "purpose": "criminal investigation", "offence": "other",
              "legal_basis": "benchmark", "top_k": "20", "face": "1"}

    def worker(k: int) -> None:
        with httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"},
                          timeout=120) as c:
            for i in range(per_client):
                probe = probes[(k * per_client + i) % len(probes)]
                t = time.perf_counter()
                r = c.post("/api/v1/searches", files={"probe": ("p.jpg", probe, "image/jpeg")},
                           data=fields)
                dt = (time.perf_counter() - t) * 1000
                with lock:
                    if r.status_code == 200:
                        lat.append(dt)
                    else:
                        errors.append(f"{r.status_code} {r.text[:80]}")

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if not lat:
        raise SystemExit(f"every request failed, e.g. {errors[:3]}")
    return {"clients": clients, "requests": len(lat), "errors": len(errors),
            "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
            "mean_ms": round(statistics.mean(lat), 2), "throughput_rps": round(len(lat) / wall, 2)}


def server_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve_and_measure(home: Path, tmp: Path, upsample: str, inv: str, probes: list[bytes],
                      requests: int) -> list[dict[str, Any]]:
    """Start ``faceledger serve`` on ``home`` (FACELEDGER_UPSAMPLE=``upsample`` unless empty);
    1 client, then 8; each row with the server's CPU ms per search."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, FACELEDGER_HOME=str(home), FACELEDGER_PORT=str(port))
    if upsample:
        env["FACELEDGER_UPSAMPLE"] = upsample
    log = open(tmp / f"server-{upsample or 'default'}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "faceledger", "serve"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    rows = []
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        run_clients(url, inv, probes, 1, 5)  # warm-up
        for clients, per in ((1, requests), (8, max(requests // 4, 5))):
            c0 = server_cpu_s(proc.pid)
            row = run_clients(url, inv, probes, clients, per)
            cpu = server_cpu_s(proc.pid) - c0
            row["upsample"] = upsample or "default"
            row["server_cpu_ms_per_search"] = round(1000 * cpu / max(row["requests"], 1), 1)
            rows.append(row)
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lfw", type=Path, required=True)
    ap.add_argument("--embeddings", type=Path, required=True)
    ap.add_argument("--requests", type=int, default=60, help="per client count for 1 client")
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    ap.add_argument("--upsample", default="", help="comma-separated FACELEDGER_UPSAMPLE values "
                    "to serve one after the other (e.g. auto,1); default: the settings'")
    args = ap.parse_args()
    paths, ids, vecs = load_npz(args.embeddings)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        app, token = build_gallery(home, args.embeddings)
        admin = app.authenticate(token)
        with app.db.write() as s:
            _, inv = accounts.create_user(s, "bencher", "investigator", actor=admin)
        rng = np.random.default_rng(0)
        match = match_latency(app, vecs[rng.permutation(len(vecs))])
        app.close()
        # Probes: real LFW photos of people with several images (their mates are in the gallery).
        counts: dict[str, int] = {}
        for i in ids:
            counts[i] = counts.get(i, 0) + 1
        probe_files = [p for p, i in zip(paths, ids, strict=True) if counts[i] >= 4][:200]
        probes = [(args.lfw / p).read_bytes() for p in probe_files]
        http: list[dict[str, Any]] = []
        for up in args.upsample.split(",") if args.upsample else [""]:
            http += serve_and_measure(home, Path(tmp), up.strip(), inv, probes, args.requests)
    report = {"benchmark": "api_search", "gallery_faces": len(vecs),
              "match_in_process": match, "http": http}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "api.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print("| upsample | clients | requests | errors | p50 ms | p99 ms | searches/s | "
          "server CPU ms/search |")
    print("|---|---|---|---|---|---|---|---|")
    for r in http:
        print(f"| {r['upsample']} | {r['clients']} | {r['requests']} | {r['errors']} | "
              f"{r['p50_ms']} | {r['p99_ms']} | {r['throughput_rps']} | "
              f"{r['server_cpu_ms_per_search']} |")


if __name__ == "__main__":
    main()
