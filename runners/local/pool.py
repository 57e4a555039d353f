"""Work items across local worker processes, each taking items one after another.

`--workers N` on the local profile: this process and N-1 worker processes take the items from
one queue, each worker started once (imports, and models that its transforms cache per
process, are paid once per worker, not per item), each item run on Beam's in-process
FnApiRunner: no data moves between processes except the items' results, which are small. This
process takes items too rather than wait beside N busy workers: an idle driver held ~150 MB
(Beam's imports and the plan) for nothing. With one worker the items run in this process;
`isolate` runs them all in worker processes, whose memory goes when they exit.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import pickle
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from gristmill.runners import lean
from gristmill.runners.local import memory

_RUN: Callable[[Any], Any] | None = None  # a worker process's items, once _start ran


def _resolve(target: str) -> Callable[[Any, Any], Any]:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def _runner(target: str, payload: Any) -> Callable[[Any], Any]:
    """item -> `target(payload, item)` in this process, the heap's free pages given back after
    each item (runners/local/memory.py)."""
    fn = _resolve(target)

    def run(item: Any) -> Any:
        try:
            return fn(payload, item)
        finally:
            memory.give_back_freed()

    return run


def _start(target: str, payload: bytes, env: dict[str, str]) -> None:
    """A worker's start. The payload comes pickled: unpickling it imports the modules its
    objects live in, and Beam must be imported lean (runners/lean.py) before them."""
    global _RUN
    os.environ.update(env)
    memory.arrow_pool_from_system()
    lean.import_beam()
    _RUN = _runner(target, pickle.loads(payload))


def _run(item: Any) -> Any:
    assert _RUN is not None
    return _RUN(item)


class _Queue:
    """The items not yet taken, and the first error: after it nobody takes another item."""

    def __init__(self, items: list[Any], done: Callable[[Any, Any], None]):
        self.items, self._done = deque(items), done
        self.lock, self.error = threading.Lock(), None

    def take(self) -> tuple[bool, Any]:
        with self.lock:
            if self.error is not None or not self.items:
                return False, None
            return True, self.items.popleft()

    def finish(self, item: Any, result: Any) -> None:
        with self.lock:  # one `done` at a time, whichever thread saw the item finish
            self._done(item, result)

    def fail(self, error: BaseException) -> None:
        with self.lock:
            self.error = self.error or error


def _take_all(queue: _Queue, run: Callable[[Any], Any]) -> None:
    """Takes items until none is left or one failed: `run(item)` here or in a worker."""
    while True:
        took, item = queue.take()
        if not took:
            return
        try:
            queue.finish(item, run(item))
        except BaseException as err:  # noqa: BLE001  (re-raised by run_items)
            queue.fail(err)
            return


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
    process as each finishes, one call at a time. An item that raises stops the run with its
    error once the items under way have finished. `isolate`: in worker processes only, even
    for one worker or one item (their memory goes when they exit)."""
    queue = _Queue(list(items), done)
    here = not isolate
    helpers = min(workers, len(queue.items)) - (1 if here else 0)
    if helpers <= 0:
        if here:
            _take_all(queue, _runner(target, payload))
    else:
        memory.give_back_freed()  # what this process freed, before more processes start
        context = multiprocessing.get_context("spawn")  # no copy of this process's Beam state
        with ProcessPoolExecutor(
            max_workers=helpers,
            mp_context=context,
            initializer=_start,
            initargs=(target, pickle.dumps(payload), env or {}),
        ) as pool:

            def in_worker(item: Any) -> Any:  # one item at a time: the queue keeps the rest
                return pool.submit(_run, item).result()

            feeders = [
                threading.Thread(target=_take_all, args=(queue, in_worker), daemon=True)
                for _ in range(helpers)
            ]
            for feeder in feeders:
                feeder.start()
            if here:
                _take_all(queue, _runner(target, payload))
            for feeder in feeders:
                feeder.join()
    if queue.error is not None:
        raise queue.error
