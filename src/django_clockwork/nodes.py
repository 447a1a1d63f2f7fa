"""Scheduler nodes: registration, heartbeats on the database clock, and failover marking.

Each scheduler registers a ``SchedulerNode`` and heartbeats every
``HEARTBEAT_INTERVAL``. A node silent for longer than ``NODE_TIMEOUT`` is dead:
the first live node to notice declares it dead (a conditional UPDATE, so only
once) and marks its unfinished runs ``abandoned``. On PostgreSQL and MySQL/MariaDB
a node also holds a session lock (``nodelocks``) and checks its peers' every
``LOCK_PROBE_INTERVAL``: a node whose lock the server released is dead at once.
Stopped and dead nodes are deleted after ``NODE_RETENTION``; their history keeps the
node id. When it is this
node's turn in the fleet (once per ``PRUNE_INTERVAL``), it prunes history in a thread
of its own, so that a long prune never delays a heartbeat.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from django.db import close_old_connections, connections, transaction
from django.db.models import Q, QuerySet

from django_clockwork import __version__, nodelocks
from django_clockwork.conf import get_conf
from django_clockwork.ledger import Ledger
from django_clockwork.logtext import user
from django_clockwork.models import DatabaseNow, SchedulerNode, database_now_minus
from django_clockwork.reconnect import drop_broken_connection, retry_on_disconnect
from django_clockwork.retention import TURN_BUDGET, Policy, Pruner

logger = logging.getLogger(__name__)

#: Seconds between two checks of this node's session lock and its peers' (at most; less
#: if ``HEARTBEAT_INTERVAL`` is shorter).
LOCK_PROBE_INTERVAL = 0.5


class Node:
    """This process's node: call ``start()`` when its scheduler starts, ``stop()`` after."""

    def __init__(self, database: str | None = None) -> None:
        conf = get_conf()
        self.id = uuid.uuid4().hex
        self.database = database or conf.database
        self.interval = conf.heartbeat_interval
        self.timeout = conf.node_timeout
        self.retention = conf.node_retention
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._registered = False
        self._ledger = Ledger(self.database, self.id)
        self._pruner = Pruner(self.database, Policy.from_conf(conf))
        self._pruning: threading.Thread | None = None
        self._lock = nodelocks.for_database(self.database, self.id) if conf.node_locks else None
        self._lock_recorded = 0  # the lock generation this node's row records; 0: none
        self._lock_failing = False
        self._lock_reachable = True
        self.tick = self.interval if self._lock is None else min(self.interval, LOCK_PROBE_INTERVAL)

    def __repr__(self) -> str:
        return f"<Node {self.hostname}:{self.pid} {self.id[:8]}>"

    def start(self) -> None:
        try:
            self.beat()
        except Exception:
            logger.exception("Could not register scheduler node %s; retrying", self.id)
        self._thread = threading.Thread(target=self._run, name="clockwork-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(self.interval + 5)
        if self._pruning is not None:  # read after the heartbeat thread, which starts it
            self._pruning.join(self.interval + 5)
        try:
            drop_broken_connection(self.database)
            SchedulerNode.objects.using(self.database).filter(id=self.id).update(
                stopped_at=DatabaseNow()
            )
        except Exception:
            logger.exception("Could not record that node %s stopped", self.id)
        finally:
            if self._lock is not None:  # after stopped_at: a stopped node is never dead
                self._lock.release()
            close_old_connections()

    def _run(self) -> None:
        next_beat = time.monotonic() + self.interval
        while not self._stopping.wait(self.tick):
            if self._lock is not None:
                self._check_locks()
            if time.monotonic() < next_beat:
                continue
            next_beat = time.monotonic() + self.interval
            try:
                self.beat()
                self.reap()
            except Exception:
                logger.exception(
                    "Heartbeat of node %s failed; retrying in %ss", self.id, self.interval
                )
                continue
            try:
                self.prune()
            except Exception:
                logger.exception("Could not ask whether node %s should prune history", self.id)
        close_old_connections()

    @retry_on_disconnect
    def beat(self) -> None:
        """Record that this node is alive, by the database clock.

        Only single-statement writes: a read-then-write would ask SQLite to upgrade a read
        lock, which it refuses at once when another scheduler writes.
        """
        drop_broken_connection(self.database)
        nodes = SchedulerNode.objects.using(self.database)
        if not self._registered:
            generation = self._hold_lock()
            nodes.create(
                id=self.id,
                hostname=self.hostname,
                pid=self.pid,
                version=__version__,
                started_at=DatabaseNow(),
                last_heartbeat=DatabaseNow(),
                locked_at=DatabaseNow() if generation else None,
            )
            self._registered = True
            self._lock_recorded = generation
            return
        if nodes.filter(id=self.id, dead_at__isnull=True).update(last_heartbeat=DatabaseNow()):
            return
        logger.error(
            "Node %s was declared dead by its peers (no heartbeat for %ss); its unfinished "
            "runs were marked abandoned. Registering again.",
            self.id,
            self.timeout,
        )
        generation = self._hold_lock()
        revived = nodes.filter(id=self.id).update(
            dead_at=None,
            stopped_at=None,
            last_heartbeat=DatabaseNow(),
            locked_at=DatabaseNow() if generation else None,
        )
        if not revived:  # deleted after its retention
            self._registered = False
            self.beat()
        else:
            self._lock_recorded = generation

    # -- the session lock (PostgreSQL, MySQL/MariaDB) --------------------------------------------

    def _check_locks(self) -> None:
        """Keep this node's lock and record it; declare dead the peers whose lock is free."""
        try:
            self.record_lock()
            self.reap_locks()
        except Exception as exc:
            if not self._lock_failing:
                logger.warning(
                    "Node %s could not check the scheduler nodes' locks (%s); heartbeats "
                    "decide meanwhile, retrying every %ss",
                    self.id,
                    exc,
                    self.tick,
                )
            self._lock_failing = True
            return
        if self._lock_failing:
            logger.info("Node %s checks the scheduler nodes' locks again", self.id)
        self._lock_failing = False

    def _hold_lock(self) -> int:
        """Hold this node's lock (taking it again on a new connection if it dropped); the
        lock's generation, or 0 if this node holds none."""
        if self._lock is None:
            return 0
        try:
            held = self._lock.hold()
        except Exception as exc:
            if self._lock_reachable:  # once per outage, not every check
                logger.warning("Node %s could not take its session lock (%s)", self.id, exc)
            self._lock_reachable = False
            return 0
        self._lock_reachable = True
        return self._lock.generation if held else 0

    @retry_on_disconnect
    def record_lock(self) -> None:
        """Keep this node's lock and write to its row when that changed: ``locked_at`` on a
        new lock, NULL when it holds none (its peers then wait for ``NODE_TIMEOUT``)."""
        generation = self._hold_lock()
        if not self._registered or generation == self._lock_recorded:
            return
        SchedulerNode.objects.using(self.database).filter(id=self.id, dead_at__isnull=True).update(
            locked_at=DatabaseNow() if generation else None
        )
        self._lock_recorded = generation

    @retry_on_disconnect
    def reap_locks(self) -> int:
        """Declare dead the nodes whose session lock no one holds; returns how many runs
        were abandoned.

        Only a lock taken since the server last started counts (a restart frees every
        lock), and only while this node holds its own: the probe runs on its connection,
        so it sees the same server run. The conditional UPDATE needs ``locked_at``
        unchanged, so a node that took its lock again meanwhile is left alone.
        """
        lock = self._lock
        if lock is None or not lock.held or lock.server_started_at is None:
            return 0
        nodes = SchedulerNode.objects.using(self.database)
        candidates = list(
            nodes.filter(
                stopped_at__isnull=True,
                dead_at__isnull=True,
                locked_at__gt=lock.server_started_at,
            ).exclude(id=self.id)
        )
        free = lock.free([node.id for node in candidates])
        abandoned = 0
        for node in candidates:
            if node.id in free:
                still = nodes.filter(
                    stopped_at__isnull=True, dead_at__isnull=True, locked_at=node.locked_at
                )
                abandoned += self._declare_dead(node, still, _lost_lock_reason(node)) or 0
        return abandoned

    def prune(self) -> threading.Thread | None:
        """If it is this node's turn in the fleet, prune history in a thread of its own
        (heartbeats go on meanwhile) and return it; None if it is not (or still pruning)."""
        if self._pruning is not None and self._pruning.is_alive():
            return None
        if not self._pruner.take_turn(self.id):
            return None
        self._pruning = threading.Thread(target=self._prune, name="clockwork-prune", daemon=True)
        self._pruning.start()
        return self._pruning

    def _prune(self) -> None:
        try:
            self._pruner.prune_turn(self.id, budget=TURN_BUDGET, stop=self._stopping)
        except Exception:
            logger.exception(
                "History pruning on node %s failed; the fleet tries again in %ss",
                self.id,
                self._pruner.policy.interval,
            )
        finally:
            connections.close_all()  # this thread's connections only

    @retry_on_disconnect
    def reap(self) -> int:
        """Declare silent nodes dead and abandon their runs; returns how many runs."""
        nodes = SchedulerNode.objects.using(self.database)
        abandoned = 0
        for node in nodes.silent(self.timeout).exclude(id=self.id):
            still = nodes.silent(self.timeout)
            abandoned += self._declare_dead(node, still, _abandoned_reason(node)) or 0
        nodes.filter(
            Q(stopped_at__lt=database_now_minus(self.retention))
            | Q(dead_at__lt=database_now_minus(self.retention))
        ).delete()
        return abandoned

    def _declare_dead(
        self, node: SchedulerNode, still: QuerySet[SchedulerNode], reason: str
    ) -> int | None:
        """Declare ``node`` dead if ``still`` holds it, and abandon its unfinished runs; the
        number abandoned, or None if another node got there first (or it came back)."""
        with transaction.atomic(using=self.database):
            if not still.filter(id=node.id).update(dead_at=DatabaseNow()):
                return None
            count = self._ledger.abandon_node(node.id, reason)
        logger.warning(
            "Scheduler node %s (%s pid %s) is dead; %d unfinished run(s) marked abandoned",
            user(node.id),
            user(node.hostname),
            node.pid,
            count,
        )
        return count


def _abandoned_reason(node: SchedulerNode) -> str:
    last = node.last_heartbeat.strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"Abandoned: its scheduler {node.hostname} pid {node.pid} (node {node.id}) stopped "
        f"heartbeating after {last} UTC; the run was not retried."
    )


def _lost_lock_reason(node: SchedulerNode) -> str:
    return (
        f"Abandoned: its scheduler {node.hostname} pid {node.pid} (node {node.id}) ended: the "
        "database released its session lock; the run was not retried."
    )
