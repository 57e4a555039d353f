"""Work items across local worker processes, each taking items one after another.

`--workers N` on the local profile: N processes, each started once (imports, and models that
its transforms cache per process, are paid once per worker, not per item), each running the
items it is given on Beam's in-process FnApiRunner: no data moves between processes except
the items' results, which are small. With one worker the items run in this process.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from gristmill.runners.local import memory

_TARGET: Callable[[Any, Any], Any] | None = None
_PAYLOAD: Any = None


def _resolve(target: str) -> Callable[[Any, Any], Any]:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def _start(target: str, payload: Any, env: dict[str, str]) -> None:
    global _TARGET, _PAYLOAD
    os.environ.update(env)
    memory.arrow_on_system_allocator()
    _TARGET, _PAYLOAD = _resolve(target), payload


def _run(item: Any) -> Any:
    assert _TARGET is not None
    try:
        return _TARGET(_PAYLOAD, item)
    finally:
        memory.give_back_freed()


def run_items(
    target: str,
    payload: Any,
    items: Iterable[Any],
    workers: int,
    done: Callable[[Any, Any], None],
    env: dict[str, str] | None = None,
    isolate: bool = False,
) -> None:
    """Calls `module:function(payload, item)` for every item; `done(item, result)` in this
    process as each finishes. An item that raises stops the run with its error. `isolate`:
    in worker processes even for one worker or one item (their memory goes when they exit)."""
    items = list(items)
    if not isolate and (workers <= 1 or len(items) <= 1):
        fn = _resolve(target)
        memory.arrow_on_system_allocator()
        for item in items:
            result = fn(payload, item)
            memory.give_back_freed()
            done(item, result)
        return
    memory.give_back_freed()  # what this process freed, before N more processes start
    context = multiprocessing.get_context("spawn")  # no copy of this process's Beam state
    with ProcessPoolExecutor(
        max_workers=max(1, min(workers, len(items))),
        mp_context=context,
        initializer=_start,
        initargs=(target, payload, env or {}),
    ) as pool:
        pending = {pool.submit(_run, item): item for item in items}
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    item = pending.pop(future)
                    done(item, future.result())
        finally:
            for future in pending:
                future.cancel()
