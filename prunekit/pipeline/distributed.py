"""Distributed training under ``torchrun``: process group, DDP wrapping, sharded loaders.

``torchrun --nproc_per_node=N -m prunekit.cli prune ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and ``MASTER_ADDR/PORT``; :func:`init_distributed` reads them (gloo on CPU, nccl on
GPU). Pruning decisions are taken on rank 0 only and sent to the other ranks with
:func:`broadcast_object`, which replay them; the model is then wrapped in DDP again, whose
constructor broadcasts rank 0's parameters and buffers. Only rank 0 writes files and shows bars.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader, DistributedSampler

__all__ = [
    "DistContext",
    "init_distributed",
    "wrap_model",
    "unwrap_model",
    "broadcast_object",
    "sync_buffers",
    "shard_loader",
]

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank, the world size and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        """Destroys the process group if :func:`init_distributed` created it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(device: str | None = None) -> DistContext:
    """Joins the process group described by torchrun's environment, if there is one.

    Args:
        device: "cpu", "cuda" or ``None`` (CUDA when available). Under torchrun with CUDA each
            process takes ``cuda:LOCAL_RANK``.
    """
    use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(device=torch.device(device or ("cuda" if use_cuda else "cpu")))
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local)
    dev = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    return DistContext(rank=rank, world_size=world, local_rank=local, device=dev, owns_group=owns)


def wrap_model(model: nn.Module, ctx: DistContext) -> nn.Module:
    """``DistributedDataParallel(model)`` when distributed (it broadcasts rank 0's weights),
    else ``model``. Call it again after every physical cut: DDP holds the old parameters."""
    if not ctx.enabled:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (or ``model`` itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def broadcast_object(obj: T, ctx: DistContext) -> T:
    """Rank 0's ``obj`` on every rank (pickled; tensors inside travel too)."""
    if not ctx.enabled:
        return obj
    box: list[Any] = [obj if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0, device=ctx.device if ctx.device.type == "cuda" else None)
    return box[0]


@torch.no_grad()
def sync_buffers(model: nn.Module, ctx: DistContext) -> None:
    """Copies rank 0's buffers (BatchNorm statistics) to every rank.

    DDP broadcasts them at the start of each forward, so after an epoch each rank holds the
    statistics of its own last batch; call this before evaluating, checkpointing or pruning.
    """
    if ctx.enabled:
        for buf in model.buffers():
            dist.broadcast(buf, src=0)


def shard_loader(loader: DataLoader, ctx: DistContext, *, seed: int) -> DataLoader:
    """The training loader with a :class:`DistributedSampler` (each rank sees its own shard).

    ``batch_size`` stays per process, as with torchrun everywhere; call
    ``loader.sampler.set_epoch(epoch)`` at the start of every epoch.
    """
    if not ctx.enabled:
        return loader
    sampler: DistributedSampler[Any] = DistributedSampler(
        loader.dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed
    )
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        num_workers=loader.num_workers,
        worker_init_fn=loader.worker_init_fn,
        generator=loader.generator,
        drop_last=loader.drop_last,
        pin_memory=loader.pin_memory,
    )
