"""The benchmark suite: ``python -m benchmarks run`` (docs/benchmarks.md says what it measures).

Every workload drives the same harness over several targets: APScheduler's ``MemoryJobStore``
and ``SQLAlchemyJobStore``, our ``DjangoJobStore`` alone in a stock ``BackgroundScheduler``,
ours as users run it (``create_scheduler()`` with default settings) and django-apscheduler's
store when it is installed. This package is also the Django app of the benchmark project
(``benchmarks.settings``), so its job functions are allowed to run.
"""
