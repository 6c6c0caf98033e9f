"""Run points on Dask distributed: a LocalCluster of worker processes, or the cluster behind a
scheduler address; or, with no workers, one after another in this process.

Each point is one task (`task.run_point`) keyed by its point key. Results come back as they
finish and go to `on_done` at once (the store writes them), so whatever finished before a
crash or Ctrl-C is kept. A worker that dies (killed, out of memory) takes its point with it;
the scheduler runs the point again on another worker, up to its `allowed-failures` times
(Dask's default 3), then the point is recorded as failed and the sweep goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from runtime.errors import InputError, one_line
from runtime.sweep import task
from runtime.sweep.points import Point
from runtime.sweep.task import Outcome, run_point

OnDone = Callable[[Point, Outcome], None]
CONNECT_TIMEOUT_S = 10
KILLED = ("every worker that ran it died (killed, or out of memory?); the scheduler gave up "
          "after its allowed-failures retries")


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class Runner:
    """Where points run; `workers` is how many run at once (for the estimate of time left)."""

    workers: int

    def run(self, points: Sequence[Point], tool: str, on_done: OnDone) -> None:
        raise NotImplementedError


class InProcess(Runner):
    """One point after another in this process: no Dask (debugging, and what the Dask runs
    are held equal to)."""

    workers = 1

    def run(self, points: Sequence[Point], tool: str, on_done: OnDone) -> None:
        for point in points:
            on_done(point, run_point(point.key, point.scenario, tool))


class OnDask(Runner):
    """Points as tasks on a Dask client's cluster."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.workers = max(len(client.scheduler_info().get("workers", {})), 1)

    def run(self, points: Sequence[Point], tool: str, on_done: OnDone) -> None:
        from distributed import as_completed

        futures = {self.client.submit(run_point, p.key, p.scenario, tool,
                                      key=f"ibs-mprof-point-{p.key}"): p for p in points}
        try:
            for future in as_completed(futures, loop=self.client.loop):  # type: ignore[no-untyped-call]
                point = futures[future]
                on_done(point, _outcome(future, point))
                future.release()
        finally:
            for future in futures:
                if not future.done():
                    future.cancel()


def _outcome(future: Any, point: Point) -> Outcome:
    from distributed import KilledWorker

    try:
        outcome = future.result()
    except KilledWorker:
        return Outcome(point.key, None, KILLED)
    except Exception as exc:  # the cluster's trouble, not the point's: recorded, go on
        return Outcome(point.key, None, one_line(f"dask: {type(exc).__name__}: {exc}"))
    assert isinstance(outcome, Outcome)
    return outcome


@contextlib.contextmanager
def runner(workers: int, scheduler: str | None) -> Iterator[Runner]:
    """The runner for `--workers N` (0: in this process) or `--scheduler ADDRESS`."""
    if scheduler is None and workers == 0:
        yield InProcess()
        return
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            _reachable(scheduler)
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S,  # type: ignore[no-untyped-call]
                            set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            raise InputError(f"--scheduler {scheduler!r}: cannot connect: "
                             f"{one_line(str(exc)) or type(exc).__name__}") from None
        with client:
            yield OnDask(client)
        return
    with _ctrl_c_for_this_process_only():
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1,  # type: ignore[no-untyped-call]
                               processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR, preload=[task.__name__])
    with cluster, Client(cluster, set_as_default=False) as client:  # type: ignore[no-untyped-call]
        yield OnDask(client)


def _reachable(address: str) -> None:
    """A TCP address that refuses connections is said at once (Dask's client would retry
    for CONNECT_TIMEOUT_S); other schemes are left to Dask."""
    scheme, _, rest = address.rpartition("://")
    if scheme not in ("", "tcp", "tls"):
        return
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError("expected tcp://HOST:PORT")
    socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()


@contextlib.contextmanager
def _ctrl_c_for_this_process_only() -> Iterator[None]:
    """Ctrl-C reaches every process of the terminal's group: the local workers too, which
    would each print a KeyboardInterrupt traceback. Workers started while SIGINT is ignored
    ignore it too (a worker restarted later ignores it from `task.dask_setup` on); this
    process takes it back and stops the cluster on Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():  # signals are its own
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
