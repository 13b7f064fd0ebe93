"""How long `dlcli train` fits with `threads` left at its default (auto), at 1, and at torch's own default.

    python bench/threads.py [--repeats 3] [--load both|idle|busy] [--configs default cnn28]

Each configuration is trained as a user types it (`dlcli train ...` as a subprocess), its fit time read
from the run's summary.json (`fit_duration_s`: the epochs, not the start-up), three ways:

  auto      no `threads=` at all: dlcli's default (dlcli/training/threads.py)
  1         `threads=1`
  torch     `threads=null`: torch's default, one thread per core

once on a quiet machine ("idle") and once while another CPU-bound process runs beside it ("busy": a
Python busy loop, started a few seconds before the run). The table gives each arm's median fit seconds
and auto's ratio to the best arm of its row. Results: bench/results/threads.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "threads.json"
DLCLI = [sys.executable, "-m", "dlcli"]

CONFIGS = {
    "default": [],  # the very first run a newcomer makes: digits, mlp
    "cnn8": ["model=cnn"],  # digits 8x8 with the default CNN
    "cnn28": ["data=npz", "model=cnn", "data.batch_size=128"],  # 28x28 images (generated; see mnist_like)
}
ARMS = {"auto": [], "1": ["threads=1"], "torch": ["threads=null"]}


def mnist_like(folder: Path) -> Path:
    """4,000 28x28 images of 10 blurred-stroke classes: the shape and size of an MNIST subset."""
    import numpy as np

    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 4000)
    base = rng.normal(0, 1, (10, 1, 28, 28)).astype("f4")
    x = base[y] + rng.normal(0, 1.5, (4000, 1, 28, 28)).astype("f4")
    path = folder / "images28.npz"
    np.savez(path, x=x, y=y)
    return path


def fit_seconds(overrides: list[str], out: Path) -> tuple[float, str]:
    """Train once; (fit seconds, the threads line of the run header)."""
    before = set(out.iterdir()) if out.exists() else set()
    done = subprocess.run([*DLCLI, "train", f"output_dir={out}", "trainer.max_epochs=5",
                           "trainer.enable_progress_bar=false", *overrides],
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"dlcli train {' '.join(overrides)} failed:\n{done.stderr[-2000:]}")
    (run,) = set(out.iterdir()) - before
    summary = json.loads((run / "summary.json").read_text())
    line = next((ln for ln in done.stderr.splitlines() if ln.startswith("threads:")), "")  # the header: stderr
    return summary["fit_duration_s"], line


def busy_loop() -> subprocess.Popen:
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(3)  # running well before the run starts, as another user's job would be
    return hog


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--load", choices=["both", "idle", "busy"], default="both")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = parser.parse_args()
    loads = ["idle", "busy"] if args.load == "both" else [args.load]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = mnist_like(Path(tmp))
        for load in loads:
            for name in args.configs:
                overrides = [o.replace("data=npz", f"data=npz data.path={data}") for o in CONFIGS[name]]
                overrides = [p for o in overrides for p in o.split()]
                times: dict[str, list[float]] = {arm: [] for arm in ARMS}
                lines: dict[str, str] = {}
                for r in range(args.repeats):
                    for arm, extra in ARMS.items():  # interleaved, so drifting load hits every arm alike
                        hog = busy_loop() if load == "busy" else None
                        try:
                            seconds, line = fit_seconds([*overrides, *extra, f"seed={r}"], Path(tmp) / "out")
                        finally:
                            if hog is not None:
                                hog.kill()
                                hog.wait()
                        times[arm].append(seconds)
                        lines[arm] = line
                med = {arm: statistics.median(v) for arm, v in times.items()}
                best = min(med.values())
                rows.append({"load": load, "config": name, "overrides": CONFIGS[name], "seconds": times,
                             "median": med, "auto_over_best": round(med["auto"] / best, 2),
                             "auto_over_threads1": round(med["auto"] / med["1"], 2), "auto_said": lines["auto"]})
                print(f"{load:5} {name:8} auto {med['auto']:6.2f}s  threads=1 {med['1']:6.2f}s  "
                      f"torch {med['torch']:6.2f}s  auto/best {med['auto'] / best:.2f}  ({lines['auto']})",
                      flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": f"{platform.machine()}, {os.cpu_count()} cores ({platform.processor() or platform.platform()})",
        "python": platform.python_version(), "torch": __import__("torch").__version__,
        "epochs": 5, "repeats": args.repeats, "rows": rows}, indent=2) + "\n")
    print(f"\nwritten: {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
