"""A task backend without priorities or deferral, for the tests of what a job may ask."""

from django_clockwork import taskframework

immediate = taskframework.submodule("backends.immediate")


class PlainBackend(immediate.ImmediateBackend):  # type: ignore[misc,name-defined]
    supports_priority = False
    supports_defer = False
