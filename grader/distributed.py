"""Grading on a Dask cluster: ``python -m grader autograde ... --scheduler tcp://HOST:PORT``.

Every submission travels as a payload of plain data (its notebooks' bytes, the
fingerprint, the sandbox and limits; see :func:`grader.autograde.make_payload`)
and is graded by :func:`grader.autograde.grade_payload` on whichever worker
the scheduler picks.  Workers need the course installed (and bubblewrap), not
a shared file system: results come back to this process, which writes them.

A worker that dies mid-task (killed, out of memory, its machine gone) loses
nothing: the scheduler re-runs its tasks on the other workers, and a task
that raised is retried.  Grading is idempotent, so a task that runs twice
gives the same record; the task key carries the submission's fingerprint.
Payloads are sent a bounded number at a time, so a class of thousands of
submissions never sits in the scheduler's memory at once.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import Unreachable, UserError

#: times a task that raised is re-run (a worker that dies is handled by the
#: scheduler's own ``distributed.scheduler.allowed-failures``, 3 by default)
RETRIES = 2
CONNECT_TIMEOUT_S = 30


class DistributedGradingError(UserError, RuntimeError):
    """Some submissions could not be graded on the cluster (the others were)."""


def task_key(payload: dict) -> str:
    return f"grade-{payload['student_id']}-{payload['assignment']}-{payload['fingerprint'][:16]}"


def _slots(client) -> int:
    info = client.scheduler_info()
    return sum(w.get("nthreads", 1) for w in info.get("workers", {}).values())


def run_on_dask(payloads: list[dict], scheduler: str, on_result: Callable[[dict], None], *,
                grade: Callable[[dict], dict], retries: int = RETRIES, in_flight: int | None = None,
                log=print) -> None:
    """Grade ``payloads`` on the Dask cluster at ``scheduler`` with ``grade``
    (:func:`grader.autograde.grade_payload`), calling ``on_result`` here, in this
    thread, with each record as it arrives.  ``grade`` is passed in, not imported,
    so that this module does not depend on the one that uses it.

    Raises :class:`DistributedGradingError` at the end, naming the submissions
    that failed even after retries; every other record has been delivered by
    then, so running the same command again grades only the failed ones.
    """
    from distributed import Client, as_completed

    if not payloads:
        return
    try:
        client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s", set_as_default=False)
    except OSError as exc:
        raise Unreachable(f"cannot reach the Dask scheduler at {scheduler}: {exc}. "
                              "Start one with `dask scheduler` and workers with "
                              f"`dask worker {scheduler}`") from exc
    failed: list[str] = []
    live: dict[str, object] = {}
    try:
        slots = _slots(client)
        if slots == 0:
            log(f"the scheduler at {scheduler} has no workers yet; waiting for one "
                f"(start them with `dask worker {scheduler}`)")
            client.wait_for_workers(1)
            slots = _slots(client)
        workers = client.scheduler_info()["workers"]
        log(f"Dask cluster at {scheduler}: {len(workers)} workers, {slots} threads")
        if any(w.get("nthreads", 1) > 1 for w in workers.values()):
            log("note: some workers run several threads; start them with `--nthreads 1 --nworkers "
                "<cores>` instead, so that every submission is graded in a process of its own")
        # Keep every worker busy (workers may join later), but bound memory.
        limit = in_flight or max(16, 4 * slots)
        pending = iter(payloads)
        owner: dict[str, dict] = {}

        def submit_next(queue) -> bool:
            p = next(pending, None)
            if p is None:
                return False
            fut = client.submit(grade, p, key=task_key(p), pure=False, retries=retries)
            owner[fut.key] = p
            live[fut.key] = fut
            queue.add(fut)
            return True

        queue = as_completed([], loop=client.loop)
        for _ in range(limit):
            if not submit_next(queue):
                break
        for fut in queue:
            p = owner.pop(fut.key)
            live.pop(fut.key, None)
            if fut.status == "finished":
                rec = fut.result()
                fut.release()
                on_result(rec)
            else:
                try:
                    exc = fut.exception()
                except Exception as err:  # cancelled or lost with the scheduler
                    exc = err
                failed.append(f"{p['student_id']}/{p['assignment']}: {type(exc).__name__}: {exc}")
                log(f"could not grade {failed[-1]}")
                fut.release()
            submit_next(queue)
    except KeyboardInterrupt:
        client.cancel(list(live.values()))
        raise
    finally:
        client.close()
    if failed:
        raise DistributedGradingError(
            f"{len(failed)} of {len(payloads)} submissions could not be graded on the cluster; the "
            "others are saved, and running the same command again grades only these:\n  "
            + "\n  ".join(failed[:20]) + ("\n  ..." if len(failed) > 20 else ""))
