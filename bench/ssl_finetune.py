"""Self-supervised pretraining on digits, then fine-tuning with 10% of the labels, against training the
same model from scratch on the same 10% — over several seeds, with the honest numbers.

    python bench/ssl_finetune.py [--seeds 1 2 3] [--label-fraction 0.1] [--output FILE.json]

For each seed and each pretraining method (a denoising autoencoder; a contrastive model, SimCLR-style)
it runs three `dlcli train` runs with that seed, so all three share one train/val/test split and the
pretraining never sees the test images:
  pretrain   experiment=<method>_pretrain          (all training images, no labels)
  fine-tune  experiment=<method>_finetune model.pretrained=<the pretraining run>
  scratch    the fine-tuning config without model.pretrained: the same model, data, labels and
             epochs, every parameter trained at the base learning rate from the start
It prints a table (test accuracy: mean ± std over seeds, and each seed) and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

METHODS = {  # method -> (pretraining experiment, fine-tuning experiment)
    "autoencoder": ("digits_ae_pretrain", "digits_ae_finetune"),
    "contrastive": ("digits_contrastive", "digits_contrastive_finetune"),
}
QUIET = ["trainer.enable_progress_bar=false", "trainer.accelerator=cpu"]


def run(overrides: list[str]) -> dict:
    from dlcli.config.compose import compose
    from dlcli.training.train import train

    composed = compose(overrides)
    t = time.perf_counter()
    result = train(composed.config, composed.overrides)
    return {"run_dir": str(result.run_dir), "metrics": result.metrics, "seconds": round(time.perf_counter() - t, 1),
            "train_size": result.summary["split_sizes"]["train"]}


def scratch_epochs(finetune_experiment: str) -> int:
    from dlcli.config.compose import compose

    cfg = compose([f"experiment={finetune_experiment}", "model.pretrained=none"], check=False).config
    stages = (cfg.get("finetune") or {}).get("stages")
    return sum(s["epochs"] for s in stages) if stages else cfg["trainer"]["max_epochs"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--label-fraction", type=float, default=0.1)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=Path("bench/results/ssl_finetune.json"))
    args = parser.parse_args()

    out_dir = tempfile.mkdtemp(prefix="dlcli-ssl-bench-")
    common = [*QUIET, f"threads={args.threads}", f"output_dir={out_dir}"]
    rows = []
    for method in args.methods:
        pre_exp, fine_exp = METHODS[method]
        epochs = scratch_epochs(fine_exp)
        for seed in args.seeds:
            pre = run([f"experiment={pre_exp}", f"seed={seed}", *common])
            labels = [f"data.label_fraction={args.label_fraction}", f"seed={seed}", *common]
            tuned = run([f"experiment={fine_exp}", f"model.pretrained={pre['run_dir']}", *labels])
            scratch = run([f"experiment={fine_exp}", "model.pretrained=null", "finetune.stages=null",
                           f"trainer.max_epochs={epochs}", *labels])
            row = {"method": method, "seed": seed, "labelled_train_images": tuned["train_size"],
                   "pretrain_images": pre["train_size"], "finetuned_test_acc": tuned["metrics"]["test/acc"],
                   "scratch_test_acc": scratch["metrics"]["test/acc"],
                   "seconds": {"pretrain": pre["seconds"], "finetune": tuned["seconds"], "scratch": scratch["seconds"]}}
            rows.append(row)
            print(f"{method:12s} seed {seed}: fine-tuned {row['finetuned_test_acc']:.4f}  "
                  f"scratch {row['scratch_test_acc']:.4f}  ({tuned['train_size']} labelled images; "
                  f"pretrain {pre['seconds']} s)", flush=True)

    summary = {}
    print(f"\ntest accuracy with {args.label_fraction:.0%} of the labels, mean ± std over seeds {args.seeds}")
    print(f"{'method':12s} {'fine-tuned':>16s} {'from scratch':>16s} {'difference':>12s}")
    for method in args.methods:
        mine = [r for r in rows if r["method"] == method]
        tuned = [r["finetuned_test_acc"] for r in mine]
        scratch = [r["scratch_test_acc"] for r in mine]
        diff = [a - b for a, b in zip(tuned, scratch, strict=True)]
        summary[method] = {"finetuned_mean": statistics.mean(tuned), "scratch_mean": statistics.mean(scratch),
                           "finetuned_std": statistics.pstdev(tuned), "scratch_std": statistics.pstdev(scratch),
                           "difference_mean": statistics.mean(diff)}
        s = summary[method]
        tuned_text = f"{s['finetuned_mean']:.4f} ± {s['finetuned_std']:.4f}"
        scratch_text = f"{s['scratch_mean']:.4f} ± {s['scratch_std']:.4f}"
        print(f"{method:12s} {tuned_text:>16s} {scratch_text:>16s} {s['difference_mean']:+12.4f}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, {args.threads} thread(s)"
    args.output.write_text(json.dumps({"machine": machine,
                                       "seeds": args.seeds, "label_fraction": args.label_fraction,
                                       "summary": summary, "runs": rows}, indent=2) + "\n")
    print(f"\nwritten: {args.output} (run folders under {out_dir})")


if __name__ == "__main__":
    main()
