"""A database per test, each a fresh copy of the migrated schema, ready before the test asks.

The schema is migrated once into a template database; each test gets `CREATE DATABASE ...
TEMPLATE` of it (a file copy, far cheaper than running the migrations again), and the next copy is
made in the background while the test runs, so a test rarely waits for its own. What a test
gets is the same as before: a database of its own at the head revision, dropped after the test.
"""

from __future__ import annotations

import contextlib
import itertools
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from streamr_coordinator.migrate import upgrade_to_head

from devenv import services


class Databases:
    """Migrated databases cloned from one template on `server`, one prepared ahead."""

    def __init__(self, server: services.Postgres, prefix: str) -> None:
        self.server = server
        self.prefix = prefix
        self.template = f"{prefix}_template"
        server.create_database(self.template)
        upgrade_to_head(server.url(self.template))
        self._numbers = itertools.count()
        # One worker: clones and drops run one at a time, in order, beside the tests.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{prefix}-clones")
        self._next = self._prepare()

    def _prepare(self) -> Future[str]:
        return self._worker.submit(self._clone, f"{self.prefix}_{next(self._numbers)}")

    def _clone(self, name: str) -> str:
        self.server.psql(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A fresh migrated database's URL, dropped afterwards (its connections cut)."""
        try:
            name = self._next.result()
        except subprocess.CalledProcessError:
            # The server was down while the clone was made (test_outages stops and restarts
            # it): the test before this one restarted it, so clone again now.
            name = self._prepare().result()
        self._next = self._prepare()
        try:
            yield self.server.url(name)
        finally:
            self._worker.submit(self.server.drop_database, name).result()

    def close(self) -> None:
        """Drop the clone prepared for a test that never came."""
        with contextlib.suppress(subprocess.CalledProcessError):  # never made: nothing to drop
            self.server.drop_database(self._next.result())
        self._worker.shutdown()
