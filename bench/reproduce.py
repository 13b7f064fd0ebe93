"""Published results reproduced from the command line with dlcli's defaults, beside the published number or a
classical baseline computed here on the same split.

    pip install sktime            # only for its data files (.ts, .csv), read here; sktime is never imported
    python bench/reproduce.py [--seeds 0 1 2] [--rows fcn-gunpoint digits-cnn ...] [--threads 1]

Every row runs `dlcli train ...` in a subprocess, typed as a user would type it (plus seed=S, threads=N and an
output folder in a temporary directory), and reads the run folder's summary.json:

- FCN and ResNet1D (`model=fcn`, `model=resnet1d`) on the UCR sets GunPoint and ItalyPowerDemand with their
  official splits (TRAIN as data.path, TEST as data.test_path, written as the (N, T) .npz a user would write),
  against Fawaz et al. 2019, "Deep learning for time series classification: a review" (mean of 10 runs,
  github.com/hfawaz/dl-4-tsc results/results-uea-avg-std.csv).
- `data=digits model=cnn` against scikit-learn's SVC (RBF kernel, default parameters) fitted on the run's own
  train rows and scored on its test rows (read from the run's preprocessing.json).
- Forecasting the airline passengers series (Box & Jenkins; 144 months, shipped in sktime's wheel) one month ahead
  with the defaults and data.difference=1 (README: a trending series), against a least-squares AR(p) fitted with
  numpy on the same training months, p and levels-or-differences chosen on the validation months, scored on the
  same test months.

Results: mean ± sd over the seeds, seconds per run, machine; written to bench/results/reproduce.json and printed
as a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ucr_variable_length import data_dir, read_ts

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "reproduce.json"
FAWAZ = "Fawaz et al. 2019 (mean of 10 runs)"

# name -> what the row runs: its dataset files, the dlcli arguments a user types, the metric, and the reference
ROWS: dict[str, dict[str, Any]] = {
    "fcn-gunpoint": {"data": "GunPoint", "args": ["model=fcn"], "metric": "test/acc",
                     "reference": ("published", (1.000, 0.000), FAWAZ)},
    "resnet1d-gunpoint": {"data": "GunPoint", "args": ["model=resnet1d"], "metric": "test/acc",
                          "reference": ("published", (0.991, 0.007), FAWAZ)},
    "fcn-italypowerdemand": {"data": "ItalyPowerDemand", "args": ["model=fcn"], "metric": "test/acc",
                             "reference": ("published", (0.961, 0.003), FAWAZ)},
    "resnet1d-italypowerdemand": {"data": "ItalyPowerDemand", "args": ["model=resnet1d"], "metric": "test/acc",
                                  "reference": ("published", (0.963, 0.004), FAWAZ)},
    "digits-cnn": {"args": ["data=digits", "model=cnn"], "metric": "test/acc",
                   "reference": ("baseline", "svc", "scikit-learn SVC (RBF, defaults), same train/test rows")},
    "airline-forecast": {"args": ["data=timeseries_csv", "data.path=Airline.csv", "data.column=Passengers",
                                  "loss=mse", "data.difference=1"], "metric": "test/mae",
                         "reference": ("baseline", "ar", "least-squares AR(p), p and levels/differences "
                                                         "chosen on the validation months")},
}


def write_ucr(name: str, folder: Path) -> list[str]:
    """The official TRAIN / TEST files as a user would write them: x (N, T) float32, y the labels."""
    import numpy as np

    args = []
    for split, key in (("TRAIN", "data.path"), ("TEST", "data.test_path")):
        seqs, labels = read_ts(data_dir() / name / f"{name}_{split}.ts")
        x = np.stack([s[:, 0] for s in seqs]).astype(np.float32)  # univariate, equal length: (N, T)
        np.savez(folder / f"{name}_{split}.npz", x=x, y=np.array(labels))
        args.append(f"{key}={name}_{split}.npz")
    return ["data=npz", *args]


def dlcli_train(args: list[str], folder: Path, out: Path) -> tuple[str, Path, float]:
    """Run `dlcli train ARGS` in ``folder``; (the command as typed, its run folder, wall seconds)."""
    exe = shutil.which("dlcli", path=str(Path(sys.executable).parent)) or shutil.which("dlcli")
    if exe is None:
        sys.exit("the dlcli command is not installed: pip install -e .")
    command = ["dlcli", "train", *args, f"output_dir={out}", "trainer.enable_progress_bar=false"]
    start = time.perf_counter()
    done = subprocess.run([exe, *command[1:]], cwd=folder, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"`{' '.join(command)}` failed ({done.returncode}):\n{done.stderr[-3000:]}")
    runs = sorted(p.parent for p in out.glob("*/summary.json"))
    if len(runs) != 1:
        sys.exit(f"`{' '.join(command)}`: expected one run folder under {out}, found {len(runs)}")
    return " ".join(command[:-2]), runs[0], seconds


def svc_accuracy(run: Path) -> float:
    """SVC (RBF, scikit-learn's defaults) on the digits rows the run trained on, scored on its test rows."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.svm import SVC

    indices = json.loads((run / "preprocessing.json").read_text())["split_indices"]["indices"]
    x, y = load_digits(return_X_y=True)
    train, test = np.asarray(indices["train"]), np.asarray(indices["test"])
    return float((SVC().fit(x[train], y[train]).predict(x[test]) == y[test]).mean())


def ar_mae(run: Path, csv: Path) -> dict[str, Any]:
    """Least-squares AR(p) one step ahead on the run's own train / val / test months: the test MAE and RMSE.

    Window i of a run with data.window=W ends at month i+W-1 (data.difference=0) or i+W (difference=1: its
    inputs are W changes, the first one at month 1); its target is the next month. The AR model is fitted on
    the months that are train targets, p in 1..W and levels or first differences picked by validation MAE.
    """
    import numpy as np

    cfg = json.loads((run / "config.json").read_text()) if (run / "config.json").is_file() else None
    if cfg is None:
        import yaml

        cfg = yaml.safe_load((run / "config.yaml").read_text())
    data = cfg["data"]
    if data.get("horizon", 1) != 1 or data.get("seasonal_lag"):
        sys.exit("the AR baseline covers one step ahead, first differences only")
    series = np.genfromtxt(csv, delimiter=",", names=True, dtype=None, encoding=None)[data["column"]].astype(float)
    indices = json.loads((run / "preprocessing.json").read_text())["split_indices"]["indices"]
    shift = data["window"] + (1 if data.get("difference") else 0)  # window i's target month is i + shift
    months = {k: np.asarray(v) + shift for k, v in indices.items()}

    def fit_predict(p: int, diff: bool) -> dict[str, np.ndarray]:
        s = np.diff(series, prepend=np.nan) if diff else series  # d[t] = s[t] - s[t-1]
        def design(ts):  # rows [1, s[t-1], ..., s[t-p]]
            return np.column_stack([np.ones(len(ts))] + [s[ts - j] for j in range(1, p + 1)])
        train = months["train"][months["train"] - p >= (1 if diff else 0)]  # enough history for p lags
        coef = np.linalg.lstsq(design(train), s[train], rcond=None)[0]
        out = {}
        for k in ("val", "test"):
            pred = design(months[k]) @ coef
            out[k] = pred + series[months[k] - 1] if diff else pred  # back to levels
        return out

    best = min(((p, diff) for p in range(1, data["window"] + 1) for diff in (False, True)),
               key=lambda pd: np.abs(fit_predict(*pd)["val"] - series[months["val"]]).mean())
    err = fit_predict(*best)["test"] - series[months["test"]]
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err ** 2).mean())), "p": best[0],
            "differences": best[1]}


def machine() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import version

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "dlcli": version("dlcli"), "platform": platform.platform()}


def mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1, help="threads=N for every run (the CPU may be shared)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": machine(), "seeds": args.seeds, "threads": args.threads, "rows": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "Airline.csv").write_bytes((data_dir() / "Airline" / "Airline.csv").read_bytes())
        for name in args.rows:
            row = ROWS[name]
            user_args = (write_ucr(row["data"], folder) if "data" in row else []) + row["args"]
            runs = []
            for seed in args.seeds:
                command, run, seconds = dlcli_train([*user_args, f"seed={seed}", f"threads={args.threads}"],
                                                    folder, folder / "out" / f"{name}-{seed}")
                summary = json.loads((run / "summary.json").read_text())
                entry = {"seed": seed, "command": command, "value": summary["metrics"][row["metric"]],
                         "seconds": round(seconds, 1), "epochs": (summary.get("best") or {}).get("epoch")}
                kind, ref, _ = row["reference"]
                if kind == "baseline" and ref == "svc":
                    entry["reference"] = svc_accuracy(run)
                elif kind == "baseline" and ref == "ar":
                    entry["rmse"] = summary["metrics"].get("test/rmse")
                    entry["reference"] = ar_mae(run, folder / "Airline.csv")
                runs.append(entry)
                print(f"{name} seed {seed}: {row['metric']} {entry['value']:.4f} ({seconds:.0f} s)", flush=True)
            values = [r["value"] for r in runs]
            mean, sd = mean_sd(values)
            kind, ref, source = row["reference"]
            if kind == "published":
                reference = {"value": ref, "source": source}
            elif ref == "svc":
                reference = {"value": mean_sd([r["reference"] for r in runs]), "source": source}
            else:
                maes = [r["reference"]["mae"] for r in runs]
                reference = {"value": mean_sd(maes), "source": source, "rmse": runs[0]["reference"]["rmse"],
                             "p": runs[0]["reference"]["p"], "differences": runs[0]["reference"]["differences"]}
            results["rows"][name] = {"command": " ".join(["dlcli train", *user_args]), "metric": row["metric"],
                                     "mean": mean, "sd": sd, "runs": runs, "reference": reference,
                                     "seconds": mean_sd([r["seconds"] for r in runs])[0]}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"written: {args.output}")


def table(results: dict[str, Any]) -> str:
    """The results as a markdown table, with the machine below it."""
    n = len(results["seeds"])
    lines = [f"| row | command (+ seed, threads={results['threads']}) | metric | dlcli, mean ± sd of {n} seeds | "
             "reference | reference is | seconds per run |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, row in results["rows"].items():
        ref = row["reference"]
        shown = f"{ref['value'][0]:.3f} ± {ref['value'][1]:.3f}"
        ours = f"{row['mean']:.3f} ± {row['sd']:.3f}"
        if "p" in ref:  # forecasting: errors in passengers; the RMSE beside the MAE
            rmse = [r["rmse"] for r in row["runs"]]
            ours = f"{row['mean']:.1f} ± {row['sd']:.1f} (RMSE {statistics.mean(rmse):.1f})"
            shown = (f"{ref['value'][0]:.1f} (RMSE {ref['rmse']:.1f}; AR({ref['p']})"
                     f"{' on differences' if ref['differences'] else ''})")
        lines.append(f"| {name} | `{row['command']}` | {row['metric']} | {ours} | {shown} | {ref['source']} | "
                     f"{row['seconds']:.0f} |")
    m = results["machine"]
    lines.append("")
    lines.append(f"Machine: {m['cpu']}, {m['cores']} cores; python {m['python']}, torch {m['torch']}, "
                 f"dlcli {m['dlcli']}.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
