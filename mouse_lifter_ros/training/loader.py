"""Where the networks train, and their batches built in parallel worker processes.

:class:`BatchLoader` builds batch ``i`` of a phase as ``make_batch(rng_i)``, where
``rng_i`` is a generator of its own, seeded from the phase's seed and ``i``: which worker
builds a batch, and how many workers there are, changes nothing in it, so a run gives the
same batches with 0 workers (built in the main process) as with 8. The workers are forked
(the synthetic data they draw from is shared with them, not copied) and keep at most
:data:`PREFETCH` batches each ready; they are shut down when the phase ends, on an error
and on Ctrl-C.

:func:`training_device` turns ``--device`` (``auto``, ``cpu`` or ``cuda``) into the
device a training runs on, and refuses ``cuda`` where PyTorch sees none.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from mouse_lifter_ros.core.errors import ParameterError
from mouse_lifter_ros.core.keypoints import DEVICES

Batch = tuple[Tensor, ...]
MakeBatch = Callable[[np.random.Generator], Batch]

#: Batches each worker process keeps ready ahead of the training.
PREFETCH = 2


def default_loader_workers() -> int:
    """Batch-building processes by default: one per core but one (the training's), at
    most 4; 0 (the main process) on a single core."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def device_problems(device: str, loader_workers: int) -> list[str]:
    """What is wrong with a training's ``device`` and ``loader_workers`` (empty: nothing):
    a device not among :data:`~mouse_lifter_ros.core.keypoints.DEVICES`, ``cuda`` where
    this PyTorch sees no CUDA device, a negative worker count."""
    problems = []
    if device not in DEVICES:
        problems.append(f"device={device!r} (--device): allowed {', '.join(DEVICES)}")
    elif device == "cuda" and not torch.cuda.is_available():
        allowed = ", ".join(d for d in DEVICES if d != "cuda")
        problems.append(f"device='cuda' (--device): this PyTorch ({torch.__version__}) sees "
                        f"no CUDA device; allowed here: {allowed}")
    if not isinstance(loader_workers, int) or loader_workers < 0:
        problems.append(f"loader_workers={loader_workers!r} (--loader-workers): 0 (batches "
                        "built in the main process) or more")
    return problems


def training_device(what: str, device: str, loader_workers: int) -> str:
    """The device ``what`` (a command) trains on: ``device``, or for ``auto`` ``cuda``
    when PyTorch sees a CUDA device, else ``cpu``. Every problem of
    :func:`device_problems` in one :class:`ParameterError`."""
    problems = device_problems(device, loader_workers)
    if problems:
        raise ParameterError(f"{what}: " + "; ".join(problems))
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def prepare_device(device: str) -> None:
    """Settings for training on ``device``: on cuda, cuDNN picks the fastest kernels for
    the (fixed) input sizes."""
    if device == "cuda":
        torch.backends.cudnn.benchmark = True


class SeededBatches(Dataset[Batch]):
    """Item ``i`` is ``make_batch`` of a generator seeded by ``seeds[i]`` alone."""

    def __init__(self, make_batch: MakeBatch, seeds: Sequence[np.random.SeedSequence]):
        self.make_batch = make_batch
        self.seeds = list(seeds)

    def __len__(self) -> int:
        return len(self.seeds)

    def __getitem__(self, i: int) -> Batch:
        return tuple(self.make_batch(np.random.default_rng(self.seeds[i])))


def as_is(batch: Any) -> Any:
    """The loader's collate function: a batch is made whole by ``make_batch``."""
    return batch


def start_method() -> str | None:
    """``fork`` where there is one: the workers share the parent's data and its
    ``make_batch`` (a closure, which no other start method could send them)."""
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else None


class BatchLoader:
    """The batches of one training phase, in order, on ``device``: batch ``i`` is
    ``make_batch(np.random.default_rng(seeds[i]))``, built by ``workers`` processes (0:
    in the main process) each keeping :data:`PREFETCH` ready, in pinned memory and copied
    without blocking on cuda. Use it in a ``with`` block: leaving it (at the end, on an
    error or on Ctrl-C) shuts the workers down.

    Where processes cannot be forked (Windows) the batches are built in the main
    process."""

    def __init__(self, make_batch: MakeBatch, seeds: Sequence[np.random.SeedSequence], *,
                 workers: int = 0, device: str = "cpu") -> None:
        self.device = torch.device(device)
        context = start_method()
        self.workers = min(workers, len(seeds)) if context is not None else 0
        cuda = self.device.type == "cuda"
        self.loader: DataLoader[Batch] = DataLoader(
            SeededBatches(make_batch, seeds), batch_size=None, shuffle=False,
            num_workers=self.workers, collate_fn=as_is, pin_memory=cuda,
            multiprocessing_context=context if self.workers else None,
            prefetch_factor=PREFETCH if self.workers else None,
            # the loader draws its workers' base seed from this, not from torch's global
            # generator, so that the training's random numbers are the same either way
            generator=torch.Generator().manual_seed(0))
        self.iterator: Any = None

    def __len__(self) -> int:
        return len(self.loader)

    def __enter__(self) -> BatchLoader:
        # The workers are forked here. OpenCV's thread pool does not survive a fork: a
        # child inherits the pool's record of threads that exist only in the parent
        # (and its lock, held or not) and hangs when it reconfigures the pool
        # (cv2.setNumThreads). So the pool is stopped while they fork, and the workers
        # draw with one OpenCV thread, which never uses it (and one PyTorch thread: the
        # loader sets that).
        threads = cv2.getNumThreads()
        if self.workers:
            cv2.setNumThreads(1)
        try:
            self.iterator = iter(self.loader)
        finally:
            if self.workers:
                cv2.setNumThreads(threads)
        return self

    def __iter__(self) -> BatchLoader:
        return self

    def __next__(self) -> Batch:
        if self.iterator is None:
            raise RuntimeError("BatchLoader: iterate it inside its with block")
        batch = next(self.iterator)
        return tuple(t.to(self.device, non_blocking=True) for t in batch)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # PyTorch stops the workers when the loader's iterator is deleted, but an error
        # or Ctrl-C on its way up keeps it alive in its traceback: stop them now, as its
        # __del__ would (they are joined, or terminated after a timeout)
        shutdown = getattr(self.iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
        self.iterator = None
