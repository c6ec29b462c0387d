"""The trained model both reconstruction and sensitivity benchmarks start from.

ResNet-20 (CIFAR-style, 1 input channel) trained on Fashion-MNIST: the embedded 10k/2k subset by
default (``prunekit.data``, offline). Training uses prunekit's own pipeline loop (SGD, momentum
0.9, weight decay 5e-4, cosine LR from 0.1, pad-crop-flip augmentation). The checkpoint is cached
in ``benchmarks/.cache/`` (gitignored) and re-created when absent, so every script is one command.
"""

from __future__ import annotations

import os
import time

import torch
import torch.nn as nn

from prunekit.data import get_dataset, make_loader, make_loaders
from prunekit.fileio import torch_save
from prunekit.models import get_model
from prunekit.pipeline.train import cross_entropy_loss, evaluate, train_epoch

CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".cache")
DATASET = "fashion-mnist-embedded"


def trained_resnet20(*, epochs: int = 8, seed: int = 0, batch_size: int = 128) -> tuple[nn.Module, dict]:
    """``(model in eval mode, info)``: loaded from the cache or trained now (info says which)."""
    path = os.path.join(CACHE, f"resnet20_{DATASET}_e{epochs}_s{seed}.pt")
    model = get_model("resnet20", num_classes=10, in_channels=1)
    info = {"dataset": DATASET, "epochs": epochs, "seed": seed, "checkpoint": os.path.relpath(path)}
    if os.path.exists(path):
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        print(f"loaded the trained model from {path}", flush=True)
        return model.eval(), info
    torch.manual_seed(seed)
    train, _ = make_loaders(DATASET, batch_size=batch_size, seed=seed, augment=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    start = time.perf_counter()
    for epoch in range(epochs):
        stats = train_epoch(model, train, opt, loss_fn=cross_entropy_loss(), progress=True, desc=f"epoch {epoch + 1}")
        sched.step()
        print(f"epoch {epoch + 1}/{epochs}: loss {stats.loss:.3f}, train acc {stats.acc:.3f}", flush=True)
    info["train_seconds"] = round(time.perf_counter() - start, 1)
    torch_save(model.state_dict(), path)
    return model.eval(), info


def test_loader(batch_size: int = 500) -> torch.utils.data.DataLoader:
    """The 2k test images, in file order."""
    return make_loader(get_dataset(DATASET, train=False), batch_size=batch_size)


def calibration_batches(n: int, batch_size: int = 128, seed: int = 1) -> list[torch.Tensor]:
    """``n`` batches of training images (no augmentation, shuffled by ``seed``) for calibration."""
    loader = make_loader(get_dataset(DATASET, train=True), batch_size=batch_size, shuffle=True, seed=seed)
    return [x for _, (x, _) in zip(range(n), loader)]


def labelled_batches(n: int, batch_size: int = 128, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` (images, labels) batches of training data (no augmentation, shuffled by ``seed``),
    for criteria that need the loss (Taylor)."""
    loader = make_loader(get_dataset(DATASET, train=True), batch_size=batch_size, shuffle=True, seed=seed)
    return [(x, y) for _, (x, y) in zip(range(n), loader)]


def accuracy(model: nn.Module) -> dict:
    r = evaluate(model, test_loader())
    return {"top1": r.top1, "top5": r.top5, "loss": r.loss}


def header(title: str, meta: dict) -> list[str]:
    """The first lines of a results markdown file: title, exact command and machine."""
    return [
        f"# {title}",
        "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['platform']}, {meta['processor']}, {meta['cpu_count']} CPUs, torch {meta['torch']} "
        f"({meta['torch_threads']} threads), prunekit {meta['prunekit']}, Python {meta['python']}",
        "",
    ]
