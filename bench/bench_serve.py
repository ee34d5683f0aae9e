"""A bounded load test of `omniemo serve` on loopback: N uploads, C at a time, W workers.

    .venv/bin/python bench/bench_serve.py [--uploads 40] [--concurrency 4] [--workers 2] [--clip PATH]

Starts a real server (a subprocess on 127.0.0.1, a free port), uploads the clip (default: a CREMA-D sample
from ../shared/data) from C client threads, follows each job to its end, and reports the latency from upload
to result (p50, p95), throughput, errors, 429 answers (retried after Retry-After) and the peak memory of the
server and its worker processes (RSS, sampled every 0.2 s). Results: bench/out/serve.json.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

HERE = Path(__file__).resolve().parent
CLIP = HERE.parent.parent / "shared" / "data" / "crema-d-samples" / "1001_DFA_ANG_XX.flv"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uploads", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clip", type=Path, default=CLIP)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "omniemo", "serve", "--port", str(port), "--workers", str(args.workers),
                               "--queue", str(args.concurrency * 2)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    base = f"http://127.0.0.1:{port}"
    peak = {"rss_mib": 0.0}
    stop = threading.Event()

    def sample():
        process = psutil.Process(server.pid)
        while not stop.is_set():
            try:
                rss = process.memory_info().rss + sum(c.memory_info().rss for c in process.children(recursive=True))
                peak["rss_mib"] = max(peak["rss_mib"], rss / 2**20)
            except psutil.Error:
                pass
            time.sleep(0.2)

    threading.Thread(target=sample, daemon=True).start()
    try:
        with httpx.Client(base_url=base, timeout=600) as client:
            deadline = time.time() + 180
            while time.time() < deadline:
                try:
                    if client.get("/v1/models").json()["workers_ready"] >= args.workers:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            data = args.clip.read_bytes()
            refused = {"429": 0}

            def one(_):
                start = time.perf_counter()
                while True:
                    answer = client.post("/v1/analyses", files={"file": (args.clip.name, data)}, data={"labels": "cremad"})
                    if answer.status_code != 429:
                        break
                    refused["429"] += 1
                    time.sleep(float(answer.headers.get("retry-after", "1")) / 10)
                if answer.status_code != 202:
                    return time.perf_counter() - start, f"HTTP {answer.status_code}"
                job_id = answer.json()["id"]
                while True:
                    job = client.get(f"/v1/analyses/{job_id}").json()
                    if job["status"] in ("done", "failed"):
                        client.delete(f"/v1/analyses/{job_id}")
                        return time.perf_counter() - start, None if job["status"] == "done" else job["error"]
                    time.sleep(0.2)

            began = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                results = list(pool.map(one, range(args.uploads)))
            wall = time.perf_counter() - began
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=60)
    latencies = sorted(r[0] for r in results)
    errors = [r[1] for r in results if r[1]]
    row = {"uploads": args.uploads, "concurrency": args.concurrency, "workers": args.workers, "clip": args.clip.name,
           "p50_s": round(latencies[len(latencies) // 2], 2), "p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 2),
           "throughput_per_min": round(60 * args.uploads / wall, 1), "errors": len(errors), "retried_429": refused["429"],
           "peak_rss_mib": round(peak["rss_mib"]), "wall_s": round(wall, 1), "error_messages": errors[:5]}
    print(json.dumps(row, indent=2))
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / "serve.json").write_text(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
