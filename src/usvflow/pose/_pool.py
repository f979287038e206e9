"""Worker processes for the pose steps: spawned (aniposelib imports jax, which is multithreaded, so
forking may deadlock), without re-running the caller's ``__main__`` script in every worker (a
Snakemake ``script:`` would run again there, without its ``snakemake`` object)."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import sys
from concurrent.futures import ProcessPoolExecutor


@contextlib.contextmanager
def process_pool(workers: int):
    main = sys.modules.get("__main__")
    saved = (
        main.__dict__.pop("__file__", None)
        if main is not None and getattr(main, "__spec__", None) is None
        else None
    )
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as ex:
            yield ex
    finally:
        if saved is not None:
            main.__file__ = saved
