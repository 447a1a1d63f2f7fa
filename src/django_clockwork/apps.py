from django.apps import AppConfig


class ClockworkConfig(AppConfig):
    name = "django_clockwork"
    verbose_name = "Clockwork scheduler"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_clockwork import checks, conf  # noqa: F401  (registers checks, receiver)
