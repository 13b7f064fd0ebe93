"""The training path: in-memory batches, dlcli stepping the optimiser itself, evaluation batches, the
progress bar's reads, callbacks grouped, the GPU recipe's switches, and memory across many epochs."""

from __future__ import annotations

import gc
import platform

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dlcli.data.prepare import Prepared
from dlcli.training.checkpoint_io import load_checkpoint
from dlcli.training.module import ArrayDataModule, TaskModule, TensorBatches, eval_batch_size
from dlcli.training.train import train


def _prepared(n: int = 50, task: str = "multiclass") -> Prepared:
    rng = np.random.default_rng(0)
    splits = {name: (rng.normal(size=(n, 4)).astype(np.float32), rng.integers(0, 3, size=n))
              for name in ("train", "val", "test")}
    return Prepared(task, splits, (4,), 3, ["a", "b", "c"], {"split_sizes": {k: n for k in splits}})


def _batches(loader) -> list[list[torch.Tensor]]:
    return [[t.clone() for t in batch] for batch in loader]


def test_in_memory_batches_shuffle_exactly_as_a_dataloader_does():
    x, y = torch.arange(50.0).reshape(25, 2), torch.arange(25)
    ours = TensorBatches((x, y), batch_size=4, shuffle=True)
    theirs = DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True)
    val_ours = TensorBatches((x, y), batch_size=10, shuffle=False)
    val_theirs = DataLoader(TensorDataset(x, y), batch_size=10)
    runs = []
    for train_loader, val_loader in ((ours, val_ours), (theirs, val_theirs)):
        torch.manual_seed(7)
        epochs = [(_batches(train_loader), _batches(val_loader)) for _ in range(3)]
        runs.append(epochs)
    assert len(ours) == len(theirs) == 7 and len(val_ours) == 3
    for (ours_train, ours_val), (theirs_train, theirs_val) in zip(*runs, strict=True):
        assert len(ours_train) == len(theirs_train)
        for a, b in zip(ours_train + ours_val, theirs_train + theirs_val, strict=True):
            assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(runs[0][0][0][0][0], runs[0][1][0][0][0])  # epochs draw different orders


def test_one_device_gets_in_memory_batches_and_workers_get_a_dataloader():
    prepared = _prepared()
    memory = ArrayDataModule(prepared, batch_size=8)
    loader = memory.train_dataloader()
    assert isinstance(loader, TensorBatches)
    stored = memory.sets["val"].tensors[0]
    first = next(iter(memory.val_dataloader()))[0]
    assert first.untyped_storage().data_ptr() == stored.untyped_storage().data_ptr()  # a view: no copy
    workers = ArrayDataModule(prepared, batch_size=8, num_workers=2)
    loader = workers.train_dataloader()
    assert isinstance(loader, DataLoader) and loader.num_workers == 2 and loader.persistent_workers


def test_evaluation_batches_fill_8_mib_of_inputs_unless_set():
    prepared = _prepared(n=50)  # 16 bytes per sample: every split in one batch
    assert eval_batch_size({"batch_size": 8}, prepared) == 50
    assert eval_batch_size({"batch_size": 8, "eval_batch_size": 5}, prepared) == 5
    big = Prepared("multiclass", {"train": (np.zeros((40, 3, 512, 512), np.float32), np.zeros(40))},
                   (3, 512, 512), 3, None, {})  # 3 MiB per image: as many as fit, but never under batch_size
    assert eval_batch_size({"batch_size": 2}, big) == 2
    assert eval_batch_size({"batch_size": 1}, big) == 2
    contrastive = Prepared("contrastive", prepared.splits, (4,), 3, None, {})  # its loss is per batch
    assert eval_batch_size({"batch_size": 8}, contrastive) == 8


@pytest.mark.slow
def test_evaluation_batch_size_leaves_the_metrics_as_they_are(make_config):
    runs = [train(make_config("trainer.max_epochs=2", "model.hidden=[32]", *extra).config)
            for extra in ([], ["data.eval_batch_size=7"])]
    whole, small = (r.metrics for r in runs)
    assert whole["val/acc"] == small["val/acc"] and whole["test/acc"] == small["test/acc"]
    assert whole["val/loss"] == pytest.approx(small["val/loss"], rel=1e-5)
    assert whole["train/loss"] == small["train/loss"]  # training never sees eval_batch_size


def _linear_module(**kwargs) -> TaskModule:
    torch.manual_seed(0)
    return TaskModule(nn.Sequential(nn.Linear(4, 3)), nn.CrossEntropyLoss(), "multiclass", 3,
                      make_optimizer=lambda named: torch.optim.SGD([p for _, p in named], lr=0.5),
                      make_scheduler=lambda opt: None, **kwargs)


def _fit(module: TaskModule, batch_size: int, epochs: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    data = TensorDataset(torch.randn(64, 4, generator=g), torch.randint(0, 3, (64,), generator=g))
    trainer = pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", num_sanity_val_steps=0)
    trainer.fit(module, train_dataloaders=DataLoader(data, batch_size=batch_size))
    return [p.detach().clone() for p in module.model.parameters()]


def test_accumulating_two_half_batches_steps_like_one_whole_batch():
    whole = _fit(_linear_module(), batch_size=32, epochs=2)
    halves = _fit(_linear_module(accumulate=2), batch_size=16, epochs=2)
    single = _fit(_linear_module(), batch_size=16, epochs=2)
    for a, b, c in zip(whole, halves, single, strict=True):
        assert torch.allclose(a, b, atol=1e-6)
        assert not torch.allclose(a, c, atol=1e-3)  # without accumulation, twice the steps


def test_the_last_short_accumulation_window_still_steps():
    module = _linear_module(accumulate=3)  # 64 samples in batches of 16: windows of 3 + 1 batches
    before = [p.detach().clone() for p in module.model.parameters()]
    _fit(module, batch_size=16)
    assert module.trainer.global_step == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, module.model.parameters(), strict=True))


def test_checkpoints_hold_each_of_dlclis_callbacks_under_its_own_name(make_config):
    result = train(make_config("trainer.max_epochs=2", "model.hidden=[16]").config)
    checkpoint = load_checkpoint(result.run_dir / "checkpoints" / "last.ckpt")
    states = checkpoint["callbacks"]
    assert "RNGState" in states and "EpochRecorder" in states
    assert [row["epoch"] for row in states["EpochRecorder"]["rows"]] == [0, 1]


def test_progress_bar_reads_metrics_at_most_every_interval(monkeypatch):
    from dlcli.training.progress import EpochProgressBar

    reads = []
    bar = EpochProgressBar(metrics_interval=3600)
    original = EpochProgressBar.get_metrics

    def spy(self, trainer, pl_module):
        items = original(self, trainer, pl_module)
        reads.append(items.get("loss"))
        return items

    monkeypatch.setattr(EpochProgressBar, "get_metrics", spy)
    module = _linear_module()
    g = torch.Generator().manual_seed(1)
    data = TensorDataset(torch.randn(64, 4, generator=g), torch.randint(0, 3, (64,), generator=g))
    trainer = pl.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, callbacks=[bar],
                         enable_model_summary=False, accelerator="cpu")
    trainer.fit(module, train_dataloaders=DataLoader(data, batch_size=4))  # 16 batches per epoch
    assert trainer.global_step == 48
    assert len(reads) <= 3 * 3  # the first batch, and each epoch's end: not 48 reads
    assert isinstance(reads[-1], float)  # the epoch's mean training loss


@pytest.mark.slow
def test_channels_last_trains_a_cnn_with_nhwc_weights(make_config):
    from dlcli.training.reload import load_run

    result = train(make_config("experiment=digits_cnn", "model.channels_last=true", "trainer.max_epochs=3").config)
    assert result.metrics["test/acc"] >= 0.9
    module = load_run(str(result.run_dir)).module()
    conv = next(m for m in module.model.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.slow
def test_compiled_model_trains_and_saves_the_plain_models_weights(make_config):
    import torch._dynamo

    from dlcli.training.reload import load_run

    before = torch._dynamo.utils.counters["frames"]["ok"]
    result = train(make_config("model.compile=true", "model.hidden=[64]", "trainer.max_epochs=3").config)
    assert torch._dynamo.utils.counters["frames"]["ok"] > before  # the model really went through torch.compile
    assert result.metrics["test/acc"] >= 0.85
    from dlcli.training.build import load_data

    run = load_run(str(result.run_dir))
    module = run.module()  # the best checkpoint, into a plain (uncompiled) model
    assert all(not k.startswith("_compiled") and "_orig_mod" not in k for k in module.state_dict())
    x, y = load_data(run.config).splits["test"]
    with torch.no_grad():
        acc = float((module(torch.from_numpy(x)).argmax(1).numpy() == y).mean())
    assert acc == pytest.approx(result.metrics["test/acc"], abs=1e-6)


def test_matmul_precision_holds_for_the_run_then_is_put_back(make_config, monkeypatch):
    seen = []
    original = TaskModule.on_train_epoch_end

    def spy(self):
        seen.append(torch.get_float32_matmul_precision())
        original(self)

    monkeypatch.setattr(TaskModule, "on_train_epoch_end", spy)
    before = torch.get_float32_matmul_precision()
    train(make_config("trainer.matmul_precision=medium", "trainer.max_epochs=2", "model.hidden=[16]").config)
    assert seen == ["medium", "medium"]
    assert torch.get_float32_matmul_precision() == before


def test_trainer_presets_compose_the_ddp_and_gpu_recipes(make_config):
    ddp = make_config("trainer=ddp").config["trainer"]
    assert (ddp["strategy"], ddp["devices"], ddp["num_nodes"]) == ("ddp", "auto", 1)
    assert ddp["max_epochs"] == 30  # trainer/default.yaml leaves it null: the model's (mlp: 30)
    gpu = make_config("trainer=gpu").config["trainer"]
    assert (gpu["precision"], gpu["matmul_precision"], gpu["benchmark"]) == ("bf16-mixed", "high", True)


def _live_tensors() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor))


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


@pytest.mark.slow  # 140 epochs: ~10 s
@pytest.mark.skipif(platform.system() != "Linux", reason="reads /proc/self/status")
def test_memory_does_not_grow_across_many_short_epochs(make_config, monkeypatch):
    from dlcli.training.recorder import EpochRecorder

    samples: dict[int, tuple[int, float]] = {}
    original = EpochRecorder.on_train_epoch_end

    def sample(self, trainer, pl_module):
        original(self, trainer, pl_module)
        if trainer.current_epoch in (20, 80, 139):
            samples[trainer.current_epoch] = (_live_tensors(), _rss_mib())

    monkeypatch.setattr(EpochRecorder, "on_train_epoch_end", sample)
    result = train(make_config("trainer.max_epochs=140", "trainer.limit_train_batches=3", "model.hidden=[32]",
                               "~callbacks.early_stopping").config)
    assert result.summary["epochs"] == 140
    (t20, rss20), (t80, rss80), (t139, rss139) = samples[20], samples[80], samples[139]
    print("live tensors", t20, t80, t139, "rss MiB", rss20, rss80, rss139)
    assert t20 == t80 == t139  # no tensor is kept from one epoch to the next
    assert rss139 - rss20 < 16  # MiB: no growth beyond the allocator's noise
    assert result.summary["peak_rss_mib"] >= rss139 * 0.9


def test_plateau_schedule_steps_on_its_metric_after_each_epoch(make_config):
    # train/loss falls every epoch; watched with mode max, every epoch after the first is "no better",
    # and with patience 0 each such epoch halves the rate for the next
    result = train(make_config("scheduler=plateau", "scheduler.monitor=train/loss", "scheduler.mode=max",
                               "scheduler.patience=0", "scheduler.factor=0.5", "trainer.max_epochs=4",
                               "~callbacks.early_stopping").config)
    rows = (result.run_dir / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    lrs = [float(r.split(",")[header.index("lr")]) for r in rows[1:]]
    losses = [float(r.split(",")[header.index("train/loss")]) for r in rows[1:]]
    assert losses == sorted(losses, reverse=True)
    assert lrs == pytest.approx([1e-3, 1e-3, 5e-4, 2.5e-4])


def test_a_plateau_schedule_on_a_metric_the_run_lacks_names_it(make_config):
    from dlcli.errors import DlcliError

    with pytest.raises(DlcliError, match="'val/nope'.*set scheduler.monitor"):
        train(make_config("scheduler=plateau", "scheduler.monitor=val/nope", "trainer.max_epochs=1").config)
