"""The test harness under Playwright: the test thread keeps one set of database connections.

Playwright's sync API leaves its event loop running in the test thread, and Django then keeps that thread's
connections in a context variable instead of its thread-local: without ``tests/browser/conftest.py``'s
``playwright`` override every test after the first browser test worked on a second connection, which lacked the
serialized rows of the first and was never closed (PostgreSQL then refused to drop the test database)."""

import asyncio

from django.db import connections


def test_the_test_thread_keeps_its_connections_while_playwrights_loop_runs(playwright, _test_thread_connections):
    asyncio.get_running_loop()  # (raises when no loop runs: the condition this guards against is gone)
    assert all(connections[alias] is conn for alias, conn in _test_thread_connections.items())
