"""Which callables a job row may name, decided before anything is imported.

A row names its function by a reference ``"package.module:qualname"``. A scheduler imports
and calls whatever a row names, so a reference is allowed only when

1. every segment of it is a public name (none starts with ``_``), and
2. its module belongs to an installed app of the project (not Django's own apps, not
   django_clockwork, not an app installed into site-packages), or the reference was
   registered with :func:`register`, or ``CLOCKWORK["ALLOWED_FUNCTIONS"]`` lists the
   reference or a module prefix of it (``"*"`` allows every module).

Both rules are read from the text alone. Only then is the module imported, and the object
found must be defined where the reference says (``__module__`` and ``__qualname__``; for a
method of a module-level instance, the method's function), so that ``"myapp.jobs:os.system"``
cannot reach ``os.system`` through a module attribute. A reference listed exactly in
``ALLOWED_FUNCTIONS`` (or any, under ``"*"``) is the operator's explicit word: it is not
held to where its object is defined.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import site
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from django.apps import apps
from django.core.signals import setting_changed
from django.dispatch import receiver

from django_clockwork.conf import get_conf
from django_clockwork.exceptions import FunctionNotAllowedError

#: The ``ALLOWED_FUNCTIONS`` entry that allows every module.
ANY = "*"
#: How an error tells the reader what to change.
_REMEDY = (
    "A job may run only a callable defined in an installed app of this project, one "
    "registered with django_clockwork.allowed.register(), or one listed in "
    "CLOCKWORK['ALLOWED_FUNCTIONS']"
)
_OWN_PACKAGES = ("django", "django_clockwork")
#: Our own function that a task job's row names in its ``func`` (see ``tasktargets``).
_BUILT_IN = frozenset({"django_clockwork.tasktargets:enqueue_task"})

F = TypeVar("F", bound=Callable[..., Any])

_registered: set[str] = set()
#: :func:`text_refusal`'s verdicts by reference, with the settings they were judged under (a
#: claim asks once per due row); cleared when the settings or the registered functions change.
_verdicts: dict[str, tuple[object, str | None]] = {}
#: Verdicts kept at most (references are rows' text: a table may hold any number).
_VERDICTS_MAX = 10_000
#: :func:`resolve`'s answers by reference: the settings they were judged under, the module,
#: the module attribute the qualname starts with, and the callable found (a claim resolves
#: every due row's reference; importing it again each time was a tenth of a claim). Cleared
#: with the verdicts; an answer is used only while the module still holds that attribute
#: (a reloaded or replaced module is resolved again).
_resolved: dict[str, tuple[object, Any, str, Any, Any]] = {}


def register(func: F) -> F:
    """Allow jobs to run ``func`` wherever it is defined; usable as a decorator."""
    _registered.add(reference_of(func))
    _forget()
    return func


def unregister(func: Callable[..., Any]) -> None:
    """Undo :func:`register` (nothing happens for a function that was not registered)."""
    _registered.discard(reference_of(func))
    _forget()


def reference_of(func: Callable[..., Any]) -> str:
    """``"module:qualname"`` of a module-level function or class (not imported back)."""
    ref = f"{getattr(func, '__module__', None)}:{getattr(func, '__qualname__', None)}"
    if refusal := syntax_refusal(ref):
        raise FunctionNotAllowedError(f"{func!r} cannot be registered: {refusal}.")
    return ref


def syntax_refusal(ref: str) -> str | None:
    """Why ``ref`` is not a public ``"module:qualname"`` reference, or None."""
    module, colon, qualname = ref.partition(":")
    if not colon or not module or not qualname:
        return f"{ref!r} is not a reference of the form 'package.module:qualname'"
    names = [*module.split("."), *qualname.split(".")]
    if not all(name.isidentifier() for name in names):
        return f"{ref!r} is not made of Python names"
    private = [name for name in names if name.startswith("_")]
    if private:
        return f"{ref!r} names the private {private[0]!r} (no segment may start with '_')"
    return None


def text_refusal(ref: str) -> str | None:
    """Why ``ref`` may not be run, judged from its text alone (nothing imported), or None."""
    conf = get_conf()
    try:
        seen_with, verdict = _verdicts[ref]
        if seen_with is conf:
            return verdict
    except KeyError:
        pass
    verdict = _judge_text(ref)
    if len(_verdicts) >= _VERDICTS_MAX:
        _forget()
    _verdicts[ref] = (conf, verdict)
    return verdict


@receiver(setting_changed)
def _forget_verdicts(**kwargs: Any) -> None:
    """A verdict depends on ``CLOCKWORK`` and ``INSTALLED_APPS`` (tests override them)."""
    _forget()


def _forget() -> None:
    _verdicts.clear()
    _resolved.clear()


def _judge_text(ref: str) -> str | None:
    if refusal := syntax_refusal(ref):
        return refusal
    module = ref.partition(":")[0]
    if _listed_exactly(ref) or ref in _registered or ref in _BUILT_IN:
        return None
    prefixes = [entry for entry in get_conf().allowed_functions if ":" not in entry]
    if _within(module, prefixes) or _within(module, project_apps()):
        return None
    return f"module {module!r} is not in an installed app of this project"


def check_text(ref: str) -> None:
    """Raise ``FunctionNotAllowedError`` if ``ref`` may not be run (nothing imported)."""
    if refusal := text_refusal(ref):
        raise FunctionNotAllowedError(_message(ref, refusal))


def resolve(ref: str) -> Any:
    """The callable ``ref`` names: checked as text, imported, then checked to be defined there.

    Raises ``FunctionNotAllowedError``; ``LookupError`` when it cannot be found, ``TypeError``
    when it is not callable.
    """
    try:
        conf, module, head, attribute, found = _resolved[ref]
    except KeyError:
        pass
    else:
        if (
            conf is get_conf()
            and sys.modules.get(module.__name__) is module
            and module.__dict__.get(head, _resolved) is attribute
        ):
            return found
    found = _resolve(ref)
    module_name, _, qualname = ref.partition(":")
    module = sys.modules.get(module_name)
    if module is not None:
        if len(_resolved) >= _VERDICTS_MAX:
            _resolved.clear()
        head = qualname.partition(".")[0]
        _resolved[ref] = (get_conf(), module, head, module.__dict__.get(head), found)
    return found


def _resolve(ref: str) -> Any:
    check_text(ref)
    module_name, _, qualname = ref.partition(":")
    trusted = _listed_exactly(ref)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise LookupError(f"could not import module {module_name!r}: {exc}") from exc
    for index, name in enumerate(qualname.split(".")):
        if index and inspect.ismodule(obj) and not trusted:
            raise FunctionNotAllowedError(
                _message(ref, f"it reaches the module {obj.__name__!r} through an attribute")
            )
        try:
            obj = getattr(obj, name)
        except AttributeError:
            raise LookupError(f"module {module_name!r} has no {qualname!r}") from None
    if not callable(obj):
        raise TypeError(f"{ref!r} names {obj!r}, which is not callable")
    if not trusted and (refusal := _definition_refusal(module_name, qualname, obj)):
        raise FunctionNotAllowedError(_message(ref, refusal))
    return obj


def import_attribute(module_name: str, name: str) -> Any:
    """``module.name`` for a reference already checked with :func:`check_text`; raises
    ``LookupError`` when the module does not import, ``AttributeError`` when it has no
    ``name``."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise LookupError(f"could not import module {module_name!r}: {exc}") from exc
    return getattr(module, name)


def _listed_exactly(ref: str) -> bool:
    listed = get_conf().allowed_functions
    return ANY in listed or ref in listed


def _definition_refusal(module: str, qualname: str, obj: Any) -> str | None:
    if inspect.ismethod(obj):  # "mod:instance.method" or "mod:Class.classmethod"
        func = obj.__func__
        defined = (getattr(func, "__module__", None), getattr(func, "__name__", None))
        wanted = (module, qualname.rpartition(".")[2])
    else:
        defined = (getattr(obj, "__module__", None), getattr(obj, "__qualname__", None))
        wanted = (module, qualname)
    if defined == wanted:
        return None
    where = f"{defined[0]}:{getattr(obj, '__qualname__', defined[1])}"
    return f"it names {obj!r}, which is defined as {where!r}, not where the reference says"


def _message(ref: str, reason: str) -> str:
    return (
        f"The function reference {ref!r} is not allowed: {reason}. {_REMEDY} "
        f"(add {ref!r} or its module there if this job is meant to run it)."
    )


def _within(module: str, packages: Any) -> bool:
    return any(module == package or module.startswith(f"{package}.") for package in packages)


def project_apps() -> list[str]:
    """The names of the installed apps whose modules jobs may name by default."""
    return [
        config.name
        for config in apps.get_app_configs()
        if not _within(config.name, _OWN_PACKAGES) and not _is_installed_package(config.path)
    ]


@functools.cache
def _is_installed_package(path: str) -> bool:
    """Whether an app lives in the standard library or site-packages (third-party code)."""
    app_path = Path(path).resolve()
    return any(app_path.is_relative_to(root) for root in _library_roots())


@functools.cache
def _library_roots() -> tuple[Path, ...]:
    paths = {sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths.update(site.getsitepackages())
    paths.add(site.getusersitepackages())
    return tuple(Path(path).resolve() for path in paths if path)
