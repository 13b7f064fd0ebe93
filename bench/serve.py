"""`dlcli serve` throughput and latency: single requests and concurrent (micro-batched) ones, against the
same model called in-process.

    python bench/serve.py [--requests 300] [--concurrency 32] [--threads 1] [--run RUN --output-dir DIR]

Trains a small run (digits 8x8, model=cnn, 3 epochs; or takes --run), then measures, each request one
input (a nested array of 64 pixels):

  in-process, one        LoadedRun.predict on one input at a time (what `dlcli predict` calls)
  in-process, batch      LoadedRun.predict on --max-batch inputs at a time (per input)
  HTTP, one at a time    one client, requests back to back on a keep-alive connection
  HTTP, concurrent       --concurrency clients at once; the server micro-batches (--max-batch 64)
  HTTP, concurrent, no batching   the same with --max-batch 1: one forward pass per request

The clients run on the same machine as the server and share its cores. Results: bench/results/serve.json.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "serve.json"


def train_run(out: Path) -> Path:
    from dlcli.config.compose import compose
    from dlcli.training.train import train

    cfg = compose([f"output_dir={out}", "model=cnn", "trainer.max_epochs=3", "trainer.enable_progress_bar=false",
                   "threads=1"]).config
    return train(cfg).run_dir


def digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().data.astype(np.float32)  # (1797, 64), 0..16 as the run was trained on


def stats(latencies: list[float], seconds: float, inputs: int) -> dict[str, float]:
    ms = np.array(latencies) * 1000
    return {"requests_per_s": round(len(latencies) / seconds, 1), "inputs_per_s": round(inputs / seconds, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def in_process(run_dir: Path, x: np.ndarray, n: int, max_batch: int, threads: int) -> dict[str, dict]:
    import torch

    from dlcli.training.predict import array_inputs
    from dlcli.training.reload import load_run

    torch.set_num_threads(threads)
    run = load_run(str(run_dir))
    run.predict(array_inputs(run, x[:1], [0], "x").raw)  # loads the model once, as the server does at start
    latencies, start = [], time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        run.predict(array_inputs(run, x[i:i + 1], [i], "x").raw, batch_size=max_batch)
        latencies.append(time.perf_counter() - t)
    one = stats(latencies, time.perf_counter() - start, n)
    batches = [x[i:i + max_batch] for i in range(0, n * 4, max_batch) if len(x[i:i + max_batch]) == max_batch]
    latencies, start = [], time.perf_counter()
    for b in batches:
        t = time.perf_counter()
        run.predict(array_inputs(run, b, list(range(len(b))), "x").raw, batch_size=max_batch)
        latencies.append(time.perf_counter() - t)
    batch = stats(latencies, time.perf_counter() - start, len(batches) * max_batch)
    batch["note"] = f"latency of a call with {max_batch} inputs"
    return {"in-process, one": one, "in-process, batch": batch}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(run_dir: Path, threads: int, max_batch: int):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "dlcli", "serve", str(run_dir), "--port", str(port),
                                "--threads", str(threads), "--max-batch", str(max_batch)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            if process.poll() is not None:
                raise SystemExit(f"the server exited with {process.returncode}")
            time.sleep(0.3)
        yield port
    finally:
        process.terminate()  # uvicorn stops its worker processes on SIGTERM (SIGKILL would orphan them)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


class Client(threading.local):
    """One keep-alive connection per client thread."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, payload: bytes) -> float:
        t = time.perf_counter()
        self.conn.request("POST", "/predict", payload, {"Content-Type": "application/json"})
        response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status}: {body[:300]!r}")
        return time.perf_counter() - t


def over_http(port: int, payloads: list[bytes], concurrency: int) -> dict[str, float]:
    local = {}

    def one(payload: bytes) -> float:
        ident = threading.get_ident()
        if ident not in local:
            local[ident] = Client(port)
        return local[ident].post(payload)

    for p in payloads[:20]:  # warm-up
        one(p)
    start = time.perf_counter()
    if concurrency == 1:
        latencies = [one(p) for p in payloads]
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            latencies = list(pool.map(one, payloads))
    return stats(latencies, time.perf_counter() - start, len(payloads))


def metadata(port: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metadata")
    return json.loads(conn.getresponse().read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per measurement (concurrent: x4)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="the server's model threads (--threads)")
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--run", help="a run folder to serve (default: train one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(args.run) if args.run else train_run(Path(tmp) / "outputs")
        x = digits()
        payloads = [json.dumps({"inputs": [x[i % len(x)].tolist()]}).encode() for i in range(args.requests * 4)]
        results = in_process(run_dir, x, args.requests, args.max_batch, args.threads)
        with server(run_dir, args.threads, args.max_batch) as port:
            results["HTTP, one at a time"] = over_http(port, payloads[:args.requests], 1)
            before = metadata(port)["serving"]["forward_passes"]
            results["HTTP, concurrent"] = over_http(port, payloads, args.concurrency)
            passes = metadata(port)["serving"]["forward_passes"] - before
            results["HTTP, concurrent"]["inputs_per_forward_pass"] = round(len(payloads) / passes, 1)
        with server(run_dir, args.threads, 1) as port:
            results["HTTP, concurrent, no batching"] = over_http(port, payloads, args.concurrency)

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    record = {
        "model": "digits 8x8, model=cnn (3 epochs); one input per request",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores ({cpu}), shared with other work; "
                   "clients on the same machine",
        "python": platform.python_version(), "torch": __import__("torch").__version__,
        "settings": {"requests": args.requests, "concurrent_requests": args.requests * 4,
                     "concurrency": args.concurrency, "threads": args.threads, "max_batch": args.max_batch},
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(record, indent=2) + "\n")
    print(f"{record['model']}; {record['machine']}")
    print(f"{'':32} {'req/s':>8} {'inputs/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name, r in results.items():
        extra = f"  ({r['inputs_per_forward_pass']} inputs per forward pass)" if "inputs_per_forward_pass" in r else ""
        print(f"{name:32} {r['requests_per_s']:>8} {r['inputs_per_s']:>9} {r['p50_ms']:>8} {r['p99_ms']:>8}{extra}")
    print(f"written: {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
