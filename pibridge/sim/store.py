"""The simulator's state in one SQLite file: clients, sensors, metrics and every pushed value.

``state.db`` in the state directory keeps what a real agent would keep
(clients with their certificate serials, sensors, metrics and their last
values) plus a log of every pushed value with its timestamp and the time it
arrived, in arrival order, so a test or a user can check exactly what the
simulator received (``pibridge sim --dump``).

Pushes are written in groups: the request worker opens :meth:`Store.batch`,
hands it every push it has checked, and the batch stores them all in one
transaction (one ``executemany`` per table) when it closes, because one
commit per push, not the rows, is what costs the time.  Other writes
(clients, sensors, metrics) are a transaction each.

The writer keeps two things in memory that every push needs and that only
it changes: whether a client is active and which metrics (with the type a
value must fit) a sensor has.  Every write that could change them forgets
them; a read-only store (``--dump``, while another process writes) keeps
nothing.

Threading: one connection shared under a lock.  All writes come from the
simulator's request worker thread (never from paho's network thread, which
only queues messages), so SQLite's fsyncs never stall the MQTT loop.  Reads
may come from any thread and see only what is committed: a batch writes
nothing until it closes.  :meth:`Store.wait_for_values` sleeps on a
condition the writer signals after each commit that stored values.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS clients (
    client_id   TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    serial      TEXT NOT NULL,
    revoked     INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sensors (
    client_id   TEXT NOT NULL,
    sensor_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    state       INTEGER,
    created_at  REAL NOT NULL,
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    UNIQUE (client_id, sensor_id)
);
CREATE TABLE IF NOT EXISTS metrics (
    client_id        TEXT NOT NULL,
    sensor_id        TEXT NOT NULL,
    metric_id        TEXT NOT NULL,
    name             TEXT NOT NULL,
    value_unit       TEXT,
    value_type       TEXT,
    value_annotation TEXT,
    last_value       TEXT,
    last_updated_us  INTEGER,
    created_at       REAL NOT NULL,
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    UNIQUE (client_id, sensor_id, metric_id)
);
CREATE TABLE IF NOT EXISTS pushed_values (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id    TEXT NOT NULL,
    sensor_id    TEXT NOT NULL,
    metric_id    TEXT NOT NULL,
    value        TEXT NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    received_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS pushed_values_client ON pushed_values (client_id, sensor_id, metric_id);
"""


class Store:
    """State of one simulator.  ``Store(path)`` creates the file; ``Store(path, read_only=True)`` only reads it."""

    def __init__(self, path: Path, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        if read_only:
            if not self.path.exists():
                raise FileNotFoundError(f"no simulator state at {self.path} (start `pibridge sim` with this --state-dir first)")
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        else:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._pushed = threading.Condition(self._lock)
        self._batch: Batch | None = None
        # The writer's memory of what pushes look up (see the module's docstring).
        self._active: dict[str, bool] = {}
        self._value_types: dict[tuple[str, str], dict[str, str]] = {}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _rows(self, sql: str, args=()) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._db.execute(sql, args)]

    def _write(self, statements) -> None:
        """Run (sql, args) pairs in one transaction; what the writer remembers is forgotten."""
        with self._lock:
            self._forget()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in statements:
                    self._db.execute(sql, args)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _forget(self) -> None:
        self._active.clear()
        self._value_types.clear()

    @contextlib.contextmanager
    def batch(self) -> Iterator["Batch"]:
        """Collect the :meth:`push` calls inside the ``with`` and store them in one transaction when it ends.

        ::

            with store.batch() as batch:
                store.push(...)          # checked by the caller, held in the batch
                store.push(...)
            # all stored (and committed) here; batch.pushes says how many

        If the write or the commit fails, none of the batch's pushes is
        stored and the error is raised.  Only the writer thread pushes, and
        only pushes may be made inside a batch.
        """
        if self._batch is not None:
            raise RuntimeError("a batch is already open")
        batch = self._batch = Batch()
        try:
            yield batch
            if batch.pushes:
                self._store_batch(batch)
        except BaseException:
            self._forget()  # it may remember sensors and metrics the batch would have created
            raise
        finally:
            self._batch = None

    def _store_batch(self, batch: "Batch") -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT INTO sensors (client_id, sensor_id, name, created_at)"
                                     " VALUES (?, ?, ?, ?)", batch.sensors)
                self._db.executemany("INSERT INTO metrics (client_id, sensor_id, metric_id, name, value_unit,"
                                     " value_type, value_annotation, created_at) VALUES (?, ?, ?, ?, NULL, ?, '', ?)",
                                     batch.metrics)
                self._db.executemany("INSERT INTO pushed_values (client_id, sensor_id, metric_id, value,"
                                     " timestamp_ms, received_at) VALUES (?, ?, ?, ?, ?, ?)", batch.values)
                self._db.executemany("UPDATE metrics SET last_value = ?, last_updated_us = ?"
                                     " WHERE client_id = ? AND sensor_id = ? AND metric_id = ?",
                                     [(text, updated_us, *key) for key, (text, updated_us) in batch.last_values.items()])
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            self._pushed.notify_all()

    # -- clients -------------------------------------------------------------

    def add_client(self, client_id: str, name: str, serial: int) -> None:
        self._write([("INSERT INTO clients (client_id, name, serial, created_at) VALUES (?, ?, ?, ?)",
                      (client_id, name, format(serial, "x"), time.time()))])

    def rename_client(self, client_id: str, name: str) -> None:
        self._write([("UPDATE clients SET name = ? WHERE client_id = ?", (name, client_id))])

    def revoke_client(self, client_id: str) -> None:
        """Mark the client revoked and drop its sensors and metrics (its pushed values stay on record)."""
        self._write([
            ("UPDATE clients SET revoked = 1 WHERE client_id = ?", (client_id,)),
            ("DELETE FROM metrics WHERE client_id = ?", (client_id,)),
            ("DELETE FROM sensors WHERE client_id = ?", (client_id,)),
        ])

    def is_active(self, client_id: str) -> bool:
        """True for a client that was signed and has not deleted itself."""
        with self._lock:
            active = self._active.get(client_id)
            if active is None:
                rows = self._rows("SELECT revoked FROM clients WHERE client_id = ?", (client_id,))
                active = bool(rows) and not rows[0]["revoked"]
                if not self.read_only:
                    self._active[client_id] = active
            return active

    def clients(self) -> list[dict]:
        """Every client ever signed: ``client_id``, ``name``, ``revoked`` (bool), ``created_at``."""
        rows = self._rows("SELECT client_id, name, revoked, created_at FROM clients ORDER BY created_at, rowid")
        for r in rows:
            r["revoked"] = bool(r["revoked"])
        return rows

    def revoked_clients(self) -> list[str]:
        return [r["client_id"] for r in self._rows("SELECT client_id FROM clients WHERE revoked = 1 ORDER BY rowid")]

    def revoked_serials(self) -> list[int]:
        return [int(r["serial"], 16) for r in self._rows("SELECT serial FROM clients WHERE revoked = 1")]

    # -- sensors -------------------------------------------------------------

    def add_sensor(self, client_id: str, sensor_id: str, name: str) -> None:
        self._write([("INSERT INTO sensors (client_id, sensor_id, name, created_at) VALUES (?, ?, ?, ?)",
                      (client_id, sensor_id, name, time.time()))])

    def sensor(self, client_id: str, sensor_id: str) -> dict | None:
        rows = self._rows("SELECT sensor_id, name, state FROM sensors WHERE client_id = ? AND sensor_id = ?",
                          (client_id, sensor_id))
        return rows[0] if rows else None

    def sensor_named(self, client_id: str, name: str) -> dict | None:
        rows = self._rows("SELECT sensor_id, name, state FROM sensors WHERE client_id = ? AND name = ?",
                          (client_id, name))
        return rows[0] if rows else None

    def update_sensor(self, client_id: str, sensor_id: str, name: str, state: int | None) -> None:
        if state is None:
            self._write([("UPDATE sensors SET name = ? WHERE client_id = ? AND sensor_id = ?",
                          (name, client_id, sensor_id))])
        else:
            self._write([("UPDATE sensors SET name = ?, state = ? WHERE client_id = ? AND sensor_id = ?",
                          (name, state, client_id, sensor_id))])

    def delete_sensor(self, client_id: str, sensor_id: str) -> None:
        self._write([
            ("DELETE FROM metrics WHERE client_id = ? AND sensor_id = ?", (client_id, sensor_id)),
            ("DELETE FROM sensors WHERE client_id = ? AND sensor_id = ?", (client_id, sensor_id)),
        ])

    def sensors(self, client_id: str) -> list[dict]:
        """The client's sensors in creation order: ``sensor_id``, ``name``, ``state``, ``metrics`` (list of IDs)."""
        sensors = self._rows("SELECT sensor_id, name, state FROM sensors WHERE client_id = ? ORDER BY seq",
                             (client_id,))
        for s in sensors:
            s["metrics"] = [m["metric_id"] for m in self.metrics(client_id, s["sensor_id"])]
        return sensors

    # -- metrics -------------------------------------------------------------

    def add_metrics(self, client_id: str, sensor_id: str, metrics: list[dict]) -> None:
        """Add metrics (dicts with metric_id, name, value_unit, value_type, value_annotation) in one transaction."""
        now = time.time()
        self._write([
            ("INSERT INTO metrics (client_id, sensor_id, metric_id, name, value_unit, value_type, value_annotation,"
             " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
             (client_id, sensor_id, m["metric_id"], m["name"], m.get("value_unit"), m.get("value_type"),
              m.get("value_annotation"), now))
            for m in metrics
        ])

    def metric(self, client_id: str, sensor_id: str, metric_id: str) -> dict | None:
        rows = self.metrics(client_id, sensor_id, metric_id)
        return rows[0] if rows else None

    def metrics(self, client_id: str, sensor_id: str, metric_id: str | None = None) -> list[dict]:
        """The sensor's metrics in creation order, each with its definition and last value (``None`` if never pushed)."""
        sql = ("SELECT metric_id, name, value_unit, value_type, value_annotation, last_value, last_updated_us"
               " FROM metrics WHERE client_id = ? AND sensor_id = ?")
        args: tuple = (client_id, sensor_id)
        if metric_id is not None:
            sql += " AND metric_id = ?"
            args += (metric_id,)
        rows = self._rows(sql + " ORDER BY seq", args)
        for r in rows:
            r["last_value"] = None if r["last_value"] is None else json.loads(r["last_value"])
        return rows

    def value_types(self, client_id: str, sensor_id: str) -> dict[str, str] | None:
        """The type each metric of the sensor takes (``double`` for a metric with a unit); None: no such sensor."""
        key = (client_id, sensor_id)
        with self._lock:
            if key in self._value_types:
                return self._value_types[key]
            if self.sensor(client_id, sensor_id) is None:
                return None  # not remembered: a client could make up any number of IDs
            types = {r["metric_id"]: "double" if r["value_unit"] else r["value_type"]
                     for r in self._rows("SELECT metric_id, value_unit, value_type FROM metrics"
                                         " WHERE client_id = ? AND sensor_id = ?", key)}
            if not self.read_only:
                self._value_types[key] = types
            return types

    def update_metrics(self, client_id: str, sensor_id: str, changes: list[dict]) -> None:
        """Apply dicts with metric_id and optional name / value_annotation in one transaction."""
        statements = []
        for c in changes:
            if "name" in c:
                statements.append(("UPDATE metrics SET name = ? WHERE client_id = ? AND sensor_id = ? AND metric_id = ?",
                                   (c["name"], client_id, sensor_id, c["metric_id"])))
            if "value_annotation" in c:
                statements.append(("UPDATE metrics SET value_annotation = ? WHERE client_id = ? AND sensor_id = ?"
                                   " AND metric_id = ?", (c["value_annotation"], client_id, sensor_id, c["metric_id"])))
        self._write(statements)

    def delete_metrics(self, client_id: str, sensor_id: str, metric_ids: list[str]) -> None:
        self._write([("DELETE FROM metrics WHERE client_id = ? AND sensor_id = ? AND metric_id = ?",
                      (client_id, sensor_id, m)) for m in metric_ids])

    # -- values --------------------------------------------------------------

    def push(self, client_id: str, sensor_id: str, new_sensor: str | None, new_metrics: list[dict],
             values: list[tuple[str, object]], timestamp_ms: int) -> None:
        """Record one accepted push atomically: sensor/metrics created on the fly, the values, the last values.

        *new_sensor* is the name of a sensor to create (None: it exists),
        *new_metrics* dicts with metric_id, name and value_type.  Inside a
        :meth:`batch` the push is stored with the batch; outside, at once.
        """
        batch = self._batch
        if batch is None:
            with self.batch():
                return self.push(client_id, sensor_id, new_sensor, new_metrics, values, timestamp_ms)
        now = time.time()
        if new_sensor is not None:
            batch.sensors.append((client_id, sensor_id, new_sensor, now))
        if new_sensor is not None or new_metrics:
            types = dict(self.value_types(client_id, sensor_id) or {})
            for m in new_metrics:
                batch.metrics.append((client_id, sensor_id, m["metric_id"], m["name"], m["value_type"], now))
                types[m["metric_id"]] = m["value_type"]
            # Later pushes of the batch must see what this one creates before it is written.
            self._value_types[(client_id, sensor_id)] = types
        updated_us = timestamp_ms * 1000
        rows, last_values = batch.values, batch.last_values
        for metric_id, value in values:
            text = _as_json(value)
            rows.append((client_id, sensor_id, metric_id, text, timestamp_ms, now))
            last_values[(client_id, sensor_id, metric_id)] = (text, updated_us)
        batch.pushes += 1

    def values(self, client_id: str, sensor_id: str | None = None, metric_id: str | None = None) -> list[dict]:
        """Every value the client pushed, in arrival order.

        Each row: ``id`` (arrival order), ``sensor_id``, ``metric_id``,
        ``value`` (as the client sent it: number, string or bool),
        ``timestamp_ms`` (the push's timestamp) and ``received_at``
        (Unix seconds when the simulator handled the push; it is committed within milliseconds).
        """
        sql = ("SELECT id, sensor_id, metric_id, value, timestamp_ms, received_at FROM pushed_values"
               " WHERE client_id = ?")
        args: tuple = (client_id,)
        if sensor_id is not None:
            sql += " AND sensor_id = ?"
            args += (sensor_id,)
        if metric_id is not None:
            sql += " AND metric_id = ?"
            args += (metric_id,)
        rows = self._rows(sql + " ORDER BY id", args)
        for r in rows:
            r["value"] = json.loads(r["value"])
        return rows

    def values_after(self, after_id: int, limit: int) -> list[dict]:
        """Up to *limit* values of every client with an ``id`` above *after_id*, in arrival order
        (rows as :meth:`values`, plus ``client_id``).  A negative *after_id* gives the newest *limit*."""
        columns = "id, client_id, sensor_id, metric_id, value, timestamp_ms, received_at"
        if after_id < 0:
            rows = self._rows(f"SELECT {columns} FROM pushed_values ORDER BY id DESC LIMIT ?", (limit,))[::-1]
        else:
            rows = self._rows(f"SELECT {columns} FROM pushed_values WHERE id > ? ORDER BY id LIMIT ?",
                              (after_id, limit))
        for r in rows:
            r["value"] = json.loads(r["value"])
        return rows

    def value_counts(self) -> list[dict]:
        """How many values arrived per client, sensor and metric: rows with those IDs and ``count``."""
        return self._rows("SELECT client_id, sensor_id, metric_id, COUNT(*) AS count FROM pushed_values"
                          " GROUP BY client_id, sensor_id, metric_id ORDER BY client_id, sensor_id, metric_id")

    def received(self, client_id: str) -> tuple[int, int]:
        """(readings, values) the client pushed: a reading is one sensor's values at one timestamp."""
        rows = self._rows("SELECT COUNT(DISTINCT sensor_id || '/' || timestamp_ms) AS readings, COUNT(*) AS n_values"
                          " FROM pushed_values WHERE client_id = ?", (client_id,))
        return rows[0]["readings"], rows[0]["n_values"]

    def wait_for_values(self, client_id: str, count: int, timeout: float, sensor_id: str | None = None,
                        metric_id: str | None = None) -> list[dict]:
        """Wait until at least *count* values arrived for the client (and sensor/metric), then return them all.

        Raises TimeoutError naming how many arrived if fewer than *count* came within *timeout* seconds.
        """
        deadline = time.monotonic() + timeout
        with self._pushed:
            while True:
                rows = self.values(client_id, sensor_id, metric_id)
                if len(rows) >= count:
                    return rows
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"waited {timeout:g} s for {count} values from client {client_id}, got {len(rows)}")
                self._pushed.wait(left)


def _as_json(value) -> str:
    """``json.dumps(value)``, quicker for the plain numbers nearly every push carries."""
    kind = type(value)
    if kind is int or (kind is float and math.isfinite(value)):
        return repr(value)  # exactly what json.dumps writes for them
    return json.dumps(value)


class Batch:
    """What :meth:`Store.batch` yields: ``pushes``, how many pushes it holds, and their rows, in arrival order.

    ``last_values`` keeps only the newest value of each metric: the ones
    before it would be overwritten in the same transaction anyway.
    """

    def __init__(self):
        self.pushes = 0
        self.sensors: list[tuple] = []
        self.metrics: list[tuple] = []
        self.values: list[tuple] = []
        self.last_values: dict[tuple[str, str, str], tuple[str, int]] = {}
