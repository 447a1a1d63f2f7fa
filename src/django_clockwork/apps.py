from django.apps import AppConfig


class ClockworkConfig(AppConfig):
    name = "django_clockwork"
    verbose_name = "Clockwork scheduler"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        from django_clockwork import checks, conf, taskresults  # noqa: F401  (registers checks, receiver)

        # A worker of Django's tasks framework in this project completes enqueued runs.
        taskresults.connect()

        # Jobs declared in code: each installed app's jobs.py, as the admin does with admin.py.
        autodiscover_modules("jobs")
