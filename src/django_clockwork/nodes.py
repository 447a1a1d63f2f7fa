"""Scheduler nodes: registration, heartbeats on the database clock, and failover marking.

Each scheduler registers a ``SchedulerNode`` and heartbeats every
``HEARTBEAT_INTERVAL``. A node silent for longer than ``NODE_TIMEOUT`` is dead:
the first live node to notice declares it dead (a conditional UPDATE, so only
once) and marks its unfinished runs ``abandoned``. Stopped and dead nodes are
deleted after ``NODE_RETENTION``; their history keeps the node id. When it is this
node's turn in the fleet (once per ``PRUNE_INTERVAL``), it prunes history in a thread
of its own, so that a long prune never delays a heartbeat.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

from django.db import close_old_connections, connections, transaction
from django.db.models import Q

from django_clockwork import __version__
from django_clockwork.conf import get_conf
from django_clockwork.ledger import Ledger
from django_clockwork.logtext import user
from django_clockwork.models import DatabaseNow, SchedulerNode, database_now_minus
from django_clockwork.reconnect import drop_broken_connection, retry_on_disconnect
from django_clockwork.retention import TURN_BUDGET, Policy, Pruner

logger = logging.getLogger(__name__)


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
            close_old_connections()

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
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
            nodes.create(
                id=self.id,
                hostname=self.hostname,
                pid=self.pid,
                version=__version__,
                started_at=DatabaseNow(),
                last_heartbeat=DatabaseNow(),
            )
            self._registered = True
            return
        if nodes.filter(id=self.id, dead_at__isnull=True).update(last_heartbeat=DatabaseNow()):
            return
        logger.error(
            "Node %s was declared dead by its peers (no heartbeat for %ss); its unfinished "
            "runs were marked abandoned. Registering again.",
            self.id,
            self.timeout,
        )
        revived = nodes.filter(id=self.id).update(
            dead_at=None, stopped_at=None, last_heartbeat=DatabaseNow()
        )
        if not revived:  # deleted after its retention
            self._registered = False
            self.beat()

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
            with transaction.atomic(using=self.database):
                claimed = (
                    nodes.silent(self.timeout).filter(id=node.id).update(dead_at=DatabaseNow())
                )
                if not claimed:
                    continue  # another node got there first, or it came back
                count = self._ledger.abandon_node(node.id, _abandoned_reason(node))
            logger.warning(
                "Scheduler node %s (%s pid %s) is dead; %d unfinished run(s) marked abandoned",
                user(node.id),
                user(node.hostname),
                node.pid,
                count,
            )
            abandoned += count
        nodes.filter(
            Q(stopped_at__lt=database_now_minus(self.retention))
            | Q(dead_at__lt=database_now_minus(self.retention))
        ).delete()
        return abandoned


def _abandoned_reason(node: SchedulerNode) -> str:
    last = node.last_heartbeat.strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"Abandoned: its scheduler {node.hostname} pid {node.pid} (node {node.id}) stopped "
        f"heartbeating after {last} UTC; the run was not retried."
    )
