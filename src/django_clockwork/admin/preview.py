"""The next fire times of a trigger, as the job's page and the job form show them.

Each time is given in the trigger's zone and in the viewer's, with a note where daylight
saving time matters: a wall time that does not exist that day (a DST gap) is moved by
APScheduler 3 to the same instant read with the offset before the gap (02:30 becomes 03:30),
and an hour that happens twice (a DST fold) is said to be the first or the second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from datetime import timezone as dt_timezone
from typing import Any

from django.utils import timezone

from django_clockwork.admin.display import moment

#: Fire times a preview lists.
COUNT = 10


@dataclass(frozen=True)
class FireTime:
    #: In the trigger's zone.
    local: datetime
    #: In the viewer's zone (Django's current time zone), as text.
    viewer: str
    note: str = ""

    @property
    def local_text(self) -> str:
        return f"{self.local:%Y-%m-%d %H:%M:%S %Z} ({self.local:%a})"


def fire_times(trigger: Any, zone: tzinfo, count: int = COUNT) -> list[FireTime]:
    """The next ``count`` fire times of ``trigger`` after now (fewer if it ends)."""
    times: list[FireTime] = []
    previous: datetime | None = None
    now = timezone.now().astimezone(zone)
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, previous or now)
        if fire is None or fire == previous:
            break
        local = fire.astimezone(dt_timezone.utc).astimezone(
            zone
        )  # normalised (same zone: unchanged)
        times.append(FireTime(local, moment(local), _note(fire, local)))
        previous = fire
    return times


def _note(fire: datetime, local: datetime) -> str:
    """Why a fire time is not the plain wall time it looks like, if it is not."""
    if fire.replace(tzinfo=None) != local.replace(tzinfo=None):
        return (
            f"moved by the DST gap: {fire:%H:%M:%S} does not exist that day; "
            f"it runs at {local:%H:%M:%S}"
        )
    twin = local.replace(fold=1 - local.fold)
    if twin.utcoffset() != local.utcoffset():
        which = "second" if local.fold else "first"
        return f"in the repeated hour (DST fold): the {which} {local:%H:%M:%S} of the day"
    return ""
