"""Training beyond one process, through Lightning: nothing here schedules or communicates by itself.

Lightning's ``ddp`` strategy starts one process per device by running the same command line again, so every
``python -m workbench train-*`` command scales as it is (``--devices 8 --num-nodes 2 --strategy ddp``), and
it gives map-style datasets (NeMo's ASR manifests) a ``DistributedSampler``. Most recipes here stream
endless shuffled batches from an ``IterableDataset`` instead, which Lightning does not split: without
:func:`shard` every rank would train on the very same batches, N times the compute for one process's data.
:func:`shard_audit` records a digest of every batch each rank trained on and gathers them on rank 0, so a run
shows in its record that its ranks saw different data.
"""
from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence

STRATEGIES = ("auto", "ddp", "ddp_spawn", "ddp_find_unused_parameters_true", "fsdp", "deepspeed")


def add_trainer_args(p: argparse.ArgumentParser) -> None:
    """Lightning's scale-out knobs, the same on every ``train-*`` command."""
    p.add_argument("--devices", default="1",
                   help="Lightning devices per node: a count, 'auto', or GPU ids like '0,1' (CPU: processes)")
    p.add_argument("--num-nodes", type=int, default=1, help="machines (Lightning reads the cluster's environment, "
                   "e.g. Slurm's, or MASTER_ADDR/NODE_RANK)")
    p.add_argument("--strategy", default="auto",
                   help=f"Lightning strategy, e.g. {', '.join(STRATEGIES[1:3])} (CPU processes talk over gloo)")
    p.add_argument("--accelerator", default="auto", help="auto (a GPU when present), cpu, gpu, ...")


def trainer_kwargs(args: argparse.Namespace) -> dict:
    """The ``pl.Trainer`` keyword arguments that :func:`add_trainer_args` parsed."""
    d = str(args.devices)
    devices = int(d) if d.lstrip("-").isdigit() else d
    kw = {"devices": devices, "num_nodes": int(args.num_nodes)}
    if args.strategy != "auto":
        kw["strategy"] = args.strategy
    if args.accelerator != "auto":
        kw["accelerator"] = args.accelerator
    return kw


def multi_process(kw: dict) -> bool:
    """Whether ``pl.Trainer(**kw)`` would train in more than one process."""
    d = kw.get("devices", 1)
    many = (isinstance(d, int) and (d > 1 or d == -1)) or (isinstance(d, str) and (d in ("auto", "-1") or "," in d))
    return many or int(kw.get("num_nodes", 1)) > 1 or str(kw.get("strategy", "auto")).startswith(("ddp", "fsdp", "deepspeed"))


def rank_world() -> tuple[int, int]:
    """(this process's global rank, the number of processes); (0, 1) outside a process group."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard(items: Sequence) -> list:
    """This rank's share of ``items`` (every ``world``-th, from its rank): disjoint across ranks, together all.
    Call it inside an ``IterableDataset``'s ``__iter__``, where the process group already exists."""
    rank, world = rank_world()
    if world == 1:
        return list(items)
    if len(items) < world:
        raise ValueError(f"{len(items)} training items cannot be shared by {world} processes: each needs one at least")
    return list(items[rank::world])


def batch_digest(batch) -> str | None:
    """A short digest of a batch's tensors, wherever they sit (lists, tuples, dicts, dataclasses such as NeMo's
    batches), to tell batches apart; None for a batch that holds none. Each tensor contributes its shape and at
    most 4,096 evenly spaced values, as float32: cheap enough for every step on a GPU, whatever the dtype."""
    import torch
    h = hashlib.sha1()
    found = False

    def walk(x):
        nonlocal found
        if isinstance(x, torch.Tensor):
            flat = x.detach().reshape(-1)
            h.update(repr(tuple(x.shape)).encode())
            h.update(flat[::max(1, flat.numel() // 4096)].float().cpu().numpy().tobytes())
            found = True
        elif isinstance(x, dict):
            for k in sorted(x, key=str):
                walk(x[k])
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
        elif isinstance(x, (str, int, float)):
            h.update(repr(x).encode())
        elif hasattr(x, "__dict__"):
            walk(vars(x))
    walk(batch)
    return h.hexdigest()[:16] if found else None


def shard_audit():
    """A Lightning callback: each rank's training-batch digests, gathered at the end of ``fit``; its ``summary``
    (on every rank) is ``{"world_size", "batches_per_rank", "shared_batches", "batches_without_tensors"}``;
    shared batches are those more than one rank trained on: 0 when the data was split, one rank's count when
    it was not."""
    import lightning.pytorch as pl
    import torch.distributed as dist

    class ShardAudit(pl.Callback):
        def __init__(self):
            self.seen: list[str] = []
            self.summary: dict = {}

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.seen.append(batch_digest(batch))

        def on_train_end(self, trainer, module):
            if dist.is_available() and dist.is_initialized():
                every: list = [None] * dist.get_world_size()
                dist.all_gather_object(every, self.seen)
            else:
                every = [self.seen]
            owners: dict[str, set] = {}
            for r, seen in enumerate(every):
                for d in seen:
                    if d is not None:
                        owners.setdefault(d, set()).add(r)
            self.summary = {"world_size": len(every), "batches_per_rank": [len(s) for s in every],
                            "shared_batches": sum(len(o) > 1 for o in owners.values()),
                            "batches_without_tensors": sum(d is None for s in every for d in s)}
    return ShardAudit()


def finish_ranks(trainer) -> None:
    """Call right after ``fit``. Under DDP it closes the process group on every rank, then ends every process but
    global rank 0, which goes on alone to evaluate and export: with Lightning's ``ddp`` the other ranks are copies
    of the same command, and all that was theirs to do (training) is done. Closing the group first matters:
    NeMo's conformer, for one, all-reduces its attention length whenever a group exists, and would wait for
    ranks that have gone. Outside DDP it does nothing."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    if not trainer.is_global_zero:
        raise SystemExit(0)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3        # glibc's mallopt parameters (malloc.h)


def fixed_mmap_threshold(nbytes: int = 128 * 1024) -> bool:
    """Pin glibc's mmap threshold so that a long training run's heap stays flat; True where it was set.

    Why: glibc raises its mmap threshold each time a large block is freed (up to 32 MB), after which the
    variable-length batches' buffers come from the heap, fragment it and are not returned. Measured on the
    ``whisper_open`` recipe (bf16, 2 cores, 40 steps, PSS of the trainer; live tensors and Python objects stay
    the same throughout): default 1.9 -> 4.3 GB (growing towards ~9 GB by step 1,600) at 0.63 steps/s; fixed at
    128 KiB 1.2 -> 1.8 GB at ~0.41 steps/s; at 4 MiB 1.2 -> 2.1 GB at 0.47 steps/s (jemalloc, for comparison:
    1.8 GB, 0.53 steps/s). So it trades speed for memory: for runs that share the machine. Fixing it also
    disables the dynamic adjustment; loader workers forked afterwards inherit it. False (nothing changed) where
    the C library is not glibc or refuses the value."""
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if not mallopt(M_MMAP_THRESHOLD, int(nbytes)):
        return False
    return bool(mallopt(M_TRIM_THRESHOLD, int(nbytes)))
