"""What a sweep costs per trial: a 16-trial sweep of 1-epoch digits runs against one `dlcli train` of the same run.

    python bench/sweep_overhead.py [--trials 16] [--repeat 3] [--output bench/results/sweep_overhead.json]

Side by side, one after the other (never at once), each a fresh process from the shell's point of view:
  train   `dlcli train data=digits trainer.max_epochs=1 threads=1` (a new interpreter: imports, data, build,
          fit, test, checkpoints, plots)
  sweep   `dlcli sweep seed=range(1,N+1) ...` over the same run, `--jobs 1`: every trial its own process (forked
          from a warm parent: dlcli/sweep/warm.py), its own run folder, told to the study
The wall time of each, best and median of --repeat rounds, and their ratio: sweep / train. A sweep whose
trials each paid a fresh interpreter's imports would be about N times one train; the goal is under 4x for N=16.
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

RUN = ["data=digits", "trainer.max_epochs=1", "threads=1", "trainer.enable_progress_bar=false"]


def timed(cmd: list[str], cwd: Path) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "sweep_overhead.json")
    args = parser.parse_args()
    dlcli = [sys.executable, "-m", "dlcli"]
    times: dict[str, list[float]] = {"train": [], "sweep": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for r in range(args.repeat):
            out = work / f"round{r}"
            times["train"].append(timed([*dlcli, "train", *RUN, f"output_dir={out / 'train'}"], work))
            times["sweep"].append(timed([*dlcli, "sweep", f"seed=range(1,{args.trials + 1})", *RUN,
                                         f"output_dir={out / 'sweep'}", "--name", f"overhead{r}"], work))
            trials = len([p for p in (out / "sweep").iterdir() if (p / "summary.json").is_file()])
            if trials != args.trials:
                sys.exit(f"the sweep made {trials} run folders, not {args.trials}")
            print(f"round {r + 1}: train {times['train'][-1]:.1f} s, sweep of {args.trials} "
                  f"{times['sweep'][-1]:.1f} s", flush=True)
    best = {k: min(v) for k, v in times.items()}
    median = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version()},
        "trials": args.trials, "repeat": args.repeat, "seconds": times, "best": best, "median": median,
        "ratio_best": best["sweep"] / best["train"], "ratio_median": median["sweep"] / median["train"],
        "per_trial_s": best["sweep"] / args.trials,
    }
    print(f"one train: {best['train']:.1f} s (median {median['train']:.1f}); a sweep of {args.trials}: "
          f"{best['sweep']:.1f} s (median {median['sweep']:.1f}), {result['per_trial_s']:.2f} s a trial; "
          f"ratio {result['ratio_best']:.2f}x (median {result['ratio_median']:.2f}x; goal < 4x)")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written: {args.output}")


if __name__ == "__main__":
    main()
