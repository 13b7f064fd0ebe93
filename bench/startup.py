"""Where a short run's time goes, from the command to the run folder: imports, config, data, model, Trainer, fit,
test, checkpoints, plots, provenance.

    python bench/startup.py [--repeat 3] [--output bench/results/startup.json] [RUN OVERRIDES...]

Each round is a fresh interpreter (the way `dlcli train` starts) that times, in order: importing dlcli's CLI,
torch, Lightning, torchmetrics, registering the components, composing and validating the config, then one
`train()` of the run (default: 1 epoch of digits, one thread), with the pieces inside it timed by wrapping the
functions that do them (data and model: build_run; the Trainer and callbacks: make_trainer; fit; test; the
confusion matrix and curves pictures; the provenance record). "other" is the rest of train(): the run folder,
summary.json, loading the best checkpoint. The whole process's wall time is measured from outside. Best and
median over --repeat rounds; written to --output as JSON.

    python bench/startup.py --against DIR [--repeat 5]

also times the whole command, `python -m dlcli train RUN OVERRIDES`, from this checkout and from another
one at DIR (e.g. `git worktree add /tmp/old <commit>`), rounds alternating between the two, each from an
empty folder with PYTHONPATH at its checkout (the same Python and packages); it prints both medians and the
change, and the median of the rounds' ratios (each round's two commands run one after the other, so
their ratio cancels the machine's drift between rounds).
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

DEFAULT_RUN = ["data=digits", "trainer.max_epochs=1", "threads=1", "trainer.enable_progress_bar=false"]

CHILD = r"""
import json, sys, time
T = {}
t0 = time.perf_counter()
def lap(name, since):
    now = time.perf_counter(); T[name] = T.get(name, 0.0) + now - since; return now
t = time.perf_counter()
from dlcli import startup
startup.pause()  # as dlcli's main() does first (dlcli/startup.py); train() settles it before fitting
import dlcli.cli  # noqa
t = lap("import dlcli (CLI)", t)
import torch  # noqa
t = lap("import torch", t)
import pytorch_lightning  # noqa
t = lap("import Lightning", t)
import torchmetrics  # noqa
t = lap("import torchmetrics", t)
from dlcli.registry import load_components
load_components()
t = lap("register components", t)
from dlcli.config.compose import compose
composed = compose(json.loads(sys.argv[1]), [])
t = lap("compose + validate", t)
import dlcli.training.train as train_mod
import dlcli.runs.plots as plots
import pytorch_lightning as pl

def timed(owner, attr, name):
    fn = getattr(owner, attr)
    def wrapper(*a, **k):
        s = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            T[name] = T.get(name, 0.0) + time.perf_counter() - s
    setattr(owner, attr, wrapper)

import dlcli.training.build as build
timed(build, "build_run", "data + model (build_run)")
timed(train_mod, "make_trainer", "Trainer + callbacks")
timed(pl.Trainer, "fit", "fit")
timed(pl.Trainer, "test", "test")
timed(plots, "save_confusion", "confusion matrix (csv, png)")
timed(train_mod, "_save_curves", "curves.png")
timed(train_mod, "_provenance", "provenance")
s = time.perf_counter()
train_mod.train(composed.config, composed.overrides)
inside = time.perf_counter() - s
parts = ("data + model (build_run)", "Trainer + callbacks", "fit", "test", "confusion matrix (csv, png)",
         "curves.png", "provenance")
T["train(): other"] = inside - sum(T.get(p, 0.0) for p in parts)
T["in-process total"] = time.perf_counter() - t0
print("STARTUP " + json.dumps(T), flush=True)
import gc
gc.freeze()  # as dlcli's main() does before the process exits (dlcli/cli/__init__.py)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "startup.json")
    parser.add_argument("--against", type=Path, default=None,
                        help="another checkout: time the whole command from both, rounds alternating")
    parser.add_argument("overrides", nargs="*", default=DEFAULT_RUN)
    args = parser.parse_args()
    if args.against is not None and not (args.against / "dlcli" / "__main__.py").is_file():
        sys.exit(f"--against {args.against}: no dlcli checkout there (dlcli/__main__.py is missing)")
    rounds: list[dict[str, float]] = []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeat):
            overrides = [*args.overrides, f"output_dir={Path(tmp) / f'round{r}'}"]
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(overrides)], cwd=tmp, env=env,
                                  capture_output=True, text=True)
            wall = time.perf_counter() - started
            line = next((x for x in done.stdout.splitlines() if x.startswith("STARTUP ")), None)
            if done.returncode != 0 or line is None:
                sys.exit(f"round {r + 1} failed:\n{done.stderr[-3000:]}")
            times = json.loads(line[len("STARTUP "):])
            times["interpreter start + exit"] = wall - times["in-process total"]
            times["process wall time"] = wall
            rounds.append(times)
            print(f"round {r + 1}: {wall:.2f} s", flush=True)
    names = list(rounds[0])
    best = {n: min(r[n] for r in rounds) for n in names}
    median = {n: statistics.median(r[n] for r in rounds) for n in names}
    width = max(map(len, names))
    print(f"{'piece':<{width}}  best s  median s  share")
    for n in names:
        share = median[n] / median["process wall time"] * 100
        print(f"{n:<{width}}  {best[n]:6.2f}  {median[n]:8.2f}  {share:4.0f}%")
    result = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "python": platform.python_version()},
              "overrides": args.overrides, "repeat": args.repeat, "rounds": rounds, "best": best, "median": median}
    if args.against is not None:
        result["against"] = _side_by_side(args.against.resolve(), args.overrides, args.repeat, env)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written: {args.output}")


def _side_by_side(other: Path, overrides: list[str], repeat: int, env: dict[str, str]) -> dict:
    """The whole `python -m dlcli train` command from this checkout and from ``other``, rounds alternating."""
    here = Path(__file__).resolve().parents[1]
    walls: dict[str, list[float]] = {"this checkout": [], "other checkout": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeat):
            for label, checkout in (("other checkout", other), ("this checkout", here))[::1 if r % 2 else -1]:
                out = Path(tmp) / f"{label.split()[0]}-{r}"
                cmd = [sys.executable, "-m", "dlcli", "train", *overrides, f"output_dir={out}"]
                started = time.perf_counter()
                done = subprocess.run(cmd, cwd=tmp, env={**env, "PYTHONPATH": str(checkout)}, capture_output=True,
                                      text=True)
                walls[label].append(time.perf_counter() - started)
                if done.returncode != 0:
                    sys.exit(f"{label} ({checkout}) failed:\n{done.stderr[-3000:]}")
    new, old = statistics.median(walls["this checkout"]), statistics.median(walls["other checkout"])
    # each round's two commands ran one after the other: their ratio cancels the machine's drift between rounds
    paired = statistics.median(a / b for a, b in zip(walls["this checkout"], walls["other checkout"], strict=True))
    print(f"whole command, median of {repeat} (rounds alternating): this checkout {new:.2f} s, "
          f"{other} {old:.2f} s: {(new - old) / old * 100:+.0f}%; median of the rounds' ratios: "
          f"{(paired - 1) * 100:+.0f}%")
    return {"other": str(other), "command": ["python", "-m", "dlcli", "train", *overrides], "walls": walls,
            "median_this": new, "median_other": old, "change": (new - old) / old, "paired_change": paired - 1}


if __name__ == "__main__":
    main()
