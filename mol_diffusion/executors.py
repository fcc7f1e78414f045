r"""Executors for sweeps beyond one machine: Dask distributed and SLURM (through submitit).

``sweeps.run_sweep`` accepts any ``concurrent.futures.Executor`` whose workers are processes.
Every cell derives its seeds from the experiment seed and its own coordinates and runs with
one torch thread, so a table is the same on the local pool, on a Dask cluster and on SLURM.

- ``dask_executor(client)``: the executor of a ``dask.distributed.Client`` (install the
  ``distributed`` extra). The cluster's workers must run one thread each
  (``threads_per_worker=1`` / ``dask worker --nthreads 1``): a cell sets torch's process-wide
  thread count, which two threads of one worker would race on.
- ``SubmititExecutor``: wraps a submitit executor (``submitit.AutoExecutor`` for SLURM, or
  ``submitit.LocalExecutor``) as a ``concurrent.futures.Executor``; one job per cell (install
  the ``slurm`` extra).

Example (SLURM)::

    import submitit
    from mol_diffusion.executors import SubmititExecutor
    from mol_diffusion.sweeps import load_or_run

    slurm = submitit.AutoExecutor(folder="slurm_logs")
    slurm.update_parameters(timeout_min=60, cpus_per_task=1, slurm_partition="cpu")
    table = load_or_run(config, executor=SubmititExecutor(slurm))

Example (Dask)::

    from dask.distributed import Client
    table = load_or_run(config, executor=dask_executor(Client("tcp://scheduler:8786")))
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Executor, Future

from mol_diffusion._validation import check_positive_float

__all__ = ["SubmititExecutor", "dask_executor"]


def dask_executor(client) -> Executor:
    """``client.get_executor()`` after checking that every worker runs a single thread.

    Args:
        client: a connected ``dask.distributed.Client``.
    """
    threads = client.nthreads()
    if not threads:
        raise ValueError("the Dask client has no workers; start some before running a sweep")
    many = {address: n for address, n in threads.items() if n != 1}
    if many:
        raise ValueError(
            f"Dask workers must run one thread each (threads_per_worker=1), got {many}: cells "
            "set torch's process-wide thread count"
        )
    return client.get_executor(pure=False)


class SubmititExecutor(Executor):
    """A ``concurrent.futures.Executor`` over a submitit executor: one job per submitted call.

    A background thread polls the submitted jobs every ``poll_seconds`` and completes their
    futures with the job's result or exception.

    Args:
        executor: e.g. ``submitit.AutoExecutor(folder=...)`` with its parameters set.
        poll_seconds: time between two polls of the job states, > 0.
    """

    def __init__(self, executor, *, poll_seconds: float = 2.0):
        if not hasattr(executor, "submit"):
            raise ValueError(f"executor must be a submitit executor, got {executor!r}")
        self._executor = executor
        self._poll = check_positive_float(poll_seconds, "poll_seconds")
        self._pending: list[tuple[object, Future]] = []
        self._lock = threading.Lock()
        self._closed = False
        self._watcher: threading.Thread | None = None

    def submit(self, fn, /, *args, **kwargs) -> Future:
        if self._closed:
            raise RuntimeError("cannot submit to a SubmititExecutor after shutdown")
        job = self._executor.submit(fn, *args, **kwargs)
        future: Future = Future()
        future.set_running_or_notify_cancel()
        with self._lock:
            self._pending.append((job, future))
            if self._watcher is None or not self._watcher.is_alive():
                self._watcher = threading.Thread(target=self._watch, daemon=True)
                self._watcher.start()
        return future

    def _watch(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._watcher = None
                    return
                pending = list(self._pending)
            for job, future in pending:
                if not job.done():
                    continue
                try:
                    future.set_result(job.result())
                except Exception as err:  # the job's own exception, re-raised by result()
                    future.set_exception(err)
                with self._lock:
                    self._pending.remove((job, future))
            time.sleep(self._poll)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._closed = True
        if cancel_futures:
            with self._lock:
                pending, self._pending = list(self._pending), []
            for job, future in pending:
                job.cancel(check=False)
                future.set_exception(RuntimeError("the job was cancelled at shutdown"))
        watcher = self._watcher
        if wait and watcher is not None:
            watcher.join()
