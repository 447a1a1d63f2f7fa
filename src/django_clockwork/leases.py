"""Fleet-wide turns: work that one scheduler of the fleet does per interval, not each of them.

A lease is a row with the time it becomes free, by the database clock. :func:`take` moves
that time forward with one conditional UPDATE, so of any number of nodes asking at once,
exactly one gets the turn; the others get it again only after the interval.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, models, transaction

from django_clockwork.models import DatabaseNow, Lease


def take(name: str, holder: str, seconds: float, database: str) -> bool:
    """Take the lease ``name`` for ``seconds`` if it is free; True if ``holder`` got it."""
    leases = Lease.objects.using(database)
    until = _database_now_plus(seconds)
    if leases.filter(name=name, free_at__lte=DatabaseNow()).update(holder=holder, free_at=until):
        return True
    if leases.filter(name=name).exists():
        return False
    try:
        with transaction.atomic(using=database):
            leases.create(name=name, holder=holder, free_at=until)
    except IntegrityError:
        return False  # another node created it first: its turn
    return True


def release(name: str, holder: str, database: str) -> bool:
    """Free the lease now (its holder has more to do and gives the next turn to the fleet)."""
    leases = Lease.objects.using(database)
    return bool(leases.filter(name=name, holder=holder).update(free_at=DatabaseNow()))


def _database_now_plus(seconds: float) -> models.Expression:
    return models.ExpressionWrapper(
        DatabaseNow() + timedelta(seconds=seconds), output_field=models.DateTimeField()
    )
