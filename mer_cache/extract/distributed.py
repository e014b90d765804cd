"""torch.distributed glue for extraction past one process.

Under ``torchrun`` (or any launch that sets RANK/WORLD_SIZE) rank 0 creates or checks the
cache, every rank writes only the units it owns (see :class:`mer_cache.cache.CacheWriter`),
and rank 0 finalizes after a barrier. Without those variables everything runs in-process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import torch.distributed as tdist

from mer_cache.errors import CacheError, MerCacheError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1


def context() -> DistContext:
    """Rank and world size from the launcher's environment; joins the process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not tdist.is_initialized():
        # gloo works everywhere; the extractor only exchanges a few small objects.
        tdist.init_process_group(backend="gloo")
    return DistContext(rank, world, local_rank)


def run_on_rank0(ctx: DistContext, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on rank 0 only and share its result (or its error) with every rank."""
    if not ctx.active:
        return fn()
    payload: list[Any] = [None]
    if ctx.rank == 0:
        try:
            payload[0] = ("ok", fn())
        except MerCacheError as exc:
            payload[0] = ("error", str(exc))
    tdist.broadcast_object_list(payload, src=0)
    kind, value = payload[0]
    if kind == "error":
        if ctx.rank == 0:
            raise CacheError(value)
        raise CacheError(f"rank 0 could not prepare the cache: {value}")
    return value


def finish(ctx: DistContext, finalize: Callable[[], Any]) -> Any:
    """Barrier, then rank 0 finalizes; every rank gets rank 0's result."""
    if not ctx.active:
        return finalize()
    tdist.barrier()
    payload: list[Any] = [finalize() if ctx.rank == 0 else None]
    tdist.broadcast_object_list(payload, src=0)
    tdist.barrier()
    return payload[0]
