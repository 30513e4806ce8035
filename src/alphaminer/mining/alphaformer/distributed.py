"""Data-parallel AlphaFormer pre-training with ``torch.distributed`` under ``torchrun``.

``torchrun --nproc_per_node=N`` starts N processes and sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_from_env` joins them into one
process group (``nccl`` on CUDA, ``gloo`` on CPU). :class:`~.pretrain.Pretrainer` then, through
the helpers here:

- shards the markets across ranks (:func:`shard`, rank ``r`` gets markets ``r, r+N, ...``),
  so each rank samples its episodes on its own markets;
- starts every rank from rank 0's weights (:func:`broadcast_parameters`) and averages every
  gradient over the ranks as soon as backward has produced it (:func:`average_gradients`:
  before gradient clipping and the optimizer step, as ``DistributedDataParallel`` does), so the
  ranks take the same optimizer steps and stay identical, and N ranks with batch ``B`` each
  step like one process whose loss is the mean of the N per-rank losses (a total batch N·B);
- writes checkpoints on rank 0 only (:func:`is_main`).

Gradients are averaged per parameter by hooks rather than by wrapping the model in
``DistributedDataParallel``: PPO calls ``policy.evaluate(...)``, not the module's ``forward``,
which DDP's reducer needs to see. A single process (no process group) is world size 1 and
every helper is a no-op, so the same code runs with or without ``torchrun``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

__all__ = ["DistContext", "average_gradients", "broadcast_object", "broadcast_parameters",
           "context", "init_from_env", "is_main", "shard"]

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the process group (rank 0 of 1 without one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def context() -> DistContext:
    """This process's place in the initialised process group, else a single process."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistContext()
    return DistContext(dist.get_rank(), dist.get_world_size(),
                       int(os.environ.get("LOCAL_RANK", dist.get_rank())), dist.get_backend())


def is_main() -> bool:
    """True on rank 0 (and in a single process): the rank that writes checkpoints and files."""
    return context().is_main


def init_from_env(backend: str | None = None) -> DistContext:
    """Join the process group ``torchrun`` describes in the environment.

    ``WORLD_SIZE`` unset or 1: nothing to join, a single-process context. The backend defaults
    to ``nccl`` when CUDA is available (each rank then uses GPU ``LOCAL_RANK``), else ``gloo``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if not dist.is_initialized():
        cuda = torch.cuda.is_available()
        backend = backend or ("nccl" if cuda else "gloo")
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return context()


def shard(items: Sequence[T], ctx: DistContext | None = None) -> list[T]:
    """This rank's share of ``items``: every ``world_size``-th one from ``rank``.

    Raises when there are fewer items than ranks: a rank with no market would have nothing
    to sample from, and the ranks' gradient exchanges would no longer pair up.
    """
    ctx = ctx or context()
    if len(items) < ctx.world_size:
        raise ValueError(f"{len(items)} market(s) for {ctx.world_size} ranks: every rank needs "
                         f"at least one; use fewer processes (--nproc_per_node) or more markets")
    return list(items[ctx.rank::ctx.world_size])


def broadcast_parameters(module: torch.nn.Module, ctx: DistContext | None = None) -> None:
    """Copy rank 0's parameters and buffers to every rank (no-op in a single process)."""
    ctx = ctx or context()
    if not ctx.active:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def broadcast_object(obj: Any, ctx: DistContext | None = None) -> Any:
    """Rank 0's ``obj`` on every rank (e.g. the update a run resumes at)."""
    ctx = ctx or context()
    if not ctx.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def average_gradients(module: torch.nn.Module, ctx: DistContext | None = None) -> list[Any]:
    """Average each parameter's gradient over the ranks as backward accumulates it.

    Returns the hook handles (``handle.remove()`` undoes it); none in a single process. Every
    rank must run the same number of backward passes, over the same parameters: Pretrainer's
    ranks do (the same PPO epochs and minibatch count on per-rank batches of one size).
    """
    ctx = ctx or context()
    if not ctx.active:
        return []
    world = float(ctx.world_size)

    def hook(p: torch.Tensor) -> None:
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        p.grad.div_(world)

    return [p.register_post_accumulate_grad_hook(hook)
            for p in module.parameters() if p.requires_grad]
