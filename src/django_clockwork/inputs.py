"""What callers give ``api``, checked before anything is imported into a row: ids, function
references, positional and keyword arguments. Each refusal is an ``InvalidJobError`` that says
what was wrong and what is expected.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Mapping
from inspect import ismethod
from typing import Any

from apscheduler.util import obj_to_ref, ref_to_obj

from django_clockwork import allowed
from django_clockwork.exceptions import FunctionNotAllowedError, InvalidJobError
from django_clockwork.models import Job

_ID_MAX = Job._meta.get_field("id").max_length or 191


def check_id(job_id: Any) -> str:
    if not isinstance(job_id, str) or not job_id:
        raise InvalidJobError(f"A job id must be a non-empty string, not {job_id!r}.")
    if len(job_id) > _ID_MAX:
        raise InvalidJobError(
            f"The job id {job_id[:40]!r}... is {len(job_id)} characters long; at most "
            f"{_ID_MAX} fit."
        )
    if any(unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"} for char in job_id):
        raise InvalidJobError(
            f"The job id {job_id!r} contains control or invisible characters; use printable text."
        )
    return job_id


def func_ref(func: Any) -> str:
    """The reference ``module:qualname`` of a callable, checked to import back to it."""
    if isinstance(func, str):
        return text_ref(func)
    if not callable(func):
        raise InvalidJobError(f"func must be a callable or a 'module:function' text, not {func!r}.")
    try:
        ref = text_ref(obj_to_ref(func))
    except FunctionNotAllowedError:
        raise
    except (ValueError, InvalidJobError) as exc:
        ref, reason = "", str(exc)
    else:
        reason = f"its reference {ref!r} imports {ref_to_obj(ref)!r} instead"
    if ref and ref_to_obj(ref) == func:
        return ref
    kind = "the bound method" if ismethod(func) else "the callable"
    raise InvalidJobError(
        f"{kind} {func!r} cannot be stored by reference ({reason}): use a module-level "
        "function, a staticmethod or a classmethod, or a method of a module-level instance."
    )


def text_ref(ref: str) -> str:
    """``ref`` as ``"module:qualname"``, allowed (see ``allowed``) and naming a callable."""
    if ":" not in ref:
        module, _, name = ref.rpartition(".")
        if not module:
            raise InvalidJobError(
                f"Function reference {ref!r}: expected 'package.module:function'."
            )
        ref = f"{module}:{name}"
    try:
        allowed.resolve(ref)  # checks the text before it imports anything
    except TypeError as exc:
        raise InvalidJobError(f"Function reference {exc}.") from None
    except LookupError as exc:
        raise InvalidJobError(
            f"Function reference {ref!r} does not import: {exc}. Expected "
            "'package.module:function' naming a module-level callable."
        ) from None
    return ref


def check_args(args: Any) -> tuple[Any, ...]:
    if args is None:
        return ()
    if isinstance(args, (str, bytes, Mapping)) or not isinstance(args, Iterable):
        raise InvalidJobError(
            f"args must be a list or tuple of positional arguments, not {type(args).__name__} "
            f"({args!r:.60})."
        )
    return tuple(args)


def check_kwargs(kwargs: Any) -> dict[str, Any]:
    if kwargs is None:
        return {}
    if not isinstance(kwargs, Mapping):
        raise InvalidJobError(
            f"kwargs must be a mapping of argument names to values, not "
            f"{type(kwargs).__name__} ({kwargs!r:.60})."
        )
    bad = [key for key in kwargs if not isinstance(key, str) or not key.isidentifier()]
    if bad:
        raise InvalidJobError(f"kwargs keys must be argument names (str), not {bad!r:.60}.")
    return dict(kwargs)


def check_long_running_after(seconds: Any) -> float | None:
    """A job's long-running threshold: a number of seconds > 0, or None (the setting's)."""
    if seconds is None:
        return None
    if (
        isinstance(seconds, (int, float))
        and not isinstance(seconds, bool)
        and math.isfinite(seconds)
        and seconds > 0
    ):
        return float(seconds)
    raise InvalidJobError(
        f"long_running_after must be a number of seconds > 0, or None for "
        f"CLOCKWORK['LONG_RUNNING_AFTER'], not {seconds!r}."
    )
