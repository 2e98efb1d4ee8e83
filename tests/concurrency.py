"""Running work in threads released together, each on its own database connection (as several app servers
would): the one race helper of the concurrency tests."""

import threading

from django.db import connections


def race(n, work, *, timeout=120):
    """Run ``work(i)`` in ``n`` threads released together; returns each result or exception. Fails if a thread
    is still running after ``timeout`` seconds (a deadlock or a lock wait)."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - collected and asserted on by the caller
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads), "a thread is still running: deadlock or lock wait?"
    return results
