"""Host batches -> global device arrays, a few steps ahead of the trainer."""
from __future__ import annotations

import queue
import threading
import time

import jax


class DevicePrefetcher:
    """Pulls local numpy batches from ``batches`` in a thread and makes them
    global arrays (``jax.make_array_from_process_local_data`` with
    ``sharding``), keeping up to ``size`` ready.

    ``next()`` returns the next global batch (a dict); ``wait_seconds`` is the
    total time ``next()`` spent waiting for data. An exception raised by the
    input pipeline is re-raised by ``next()``.
    """

    _END = object()

    def __init__(self, batches, sharding, size: int = 2):
        self._batches = batches
        self._sharding = sharding
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, size))
        self._stop = threading.Event()
        self.wait_seconds = 0.0
        self._thread = threading.Thread(target=self._run, name="device-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for local in self._batches:
                if self._stop.is_set():
                    return
                batch = {name: jax.make_array_from_process_local_data(self._sharding, value)
                         for name, value in local.items()}
                if not self._put(batch):
                    return
            self._put(self._END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._put(exc)

    def __iter__(self):
        return self

    def __next__(self):
        start = time.perf_counter()
        item = self._queue.get()
        self.wait_seconds += time.perf_counter() - start
        if item is self._END:
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        close = getattr(self._batches, "close", None)
        if close is not None:
            close()
