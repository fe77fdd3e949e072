"""torchrun / DistributedDataParallel plumbing; a single process needs none of it.

`torchrun --nproc-per-node N -m pneumo train ...` sets RANK, WORLD_SIZE and LOCAL_RANK; each
process then trains on its share of every epoch's batches (the same seeded permutation, dealt
out by rank), gradients are averaged by DDP, and rank 0 alone writes checkpoints and talks to
MLflow. NCCL on GPUs, gloo on CPUs (which is how the tests run two processes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def pick_device(requested: str, local_rank: int) -> torch.device:
    if requested == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        from pneumo.errors import ConfigError

        raise ConfigError(
            "train.device=cuda but no CUDA device is visible", hint="use train.device=auto"
        )
    return device


def setup(requested_device: str) -> tuple[Dist, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), pick_device(requested_device, 0)
    info = Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    device = pick_device(requested_device, info.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return info, device


def initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def teardown(info: Dist) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: Dist) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_flag(info: Dist, flag: bool) -> bool:
    """Rank 0's decision (e.g. early stop), shared so that every rank leaves the loop together."""
    if not info.enabled:
        return flag
    tensor = torch.tensor([int(flag)], dtype=torch.int64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())


def broadcast_object(info: Dist, obj: Any) -> Any:
    """Rank 0's ``obj`` (picklable), received by every rank: e.g. the next trial's config."""
    if not info.enabled:
        return obj
    box = [obj]
    device = (
        torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    )
    dist.broadcast_object_list(box, src=0, device=device)
    return box[0]
