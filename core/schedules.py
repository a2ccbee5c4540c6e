"""Periodic tasks registered with django-celery-beat (``synthgate init`` calls each app's ensure)."""

from __future__ import annotations

from django_celery_beat.models import IntervalSchedule, PeriodicTask


def periodic_task_ensure(*, name: str, task: str, every_seconds: int, description: str) -> PeriodicTask:
    """Create or update one beat entry that runs ``task`` every ``every_seconds`` (idempotent)."""
    interval, _ = IntervalSchedule.objects.get_or_create(every=every_seconds, period=IntervalSchedule.SECONDS)
    periodic, _ = PeriodicTask.objects.update_or_create(
        name=name, defaults={"task": task, "interval": interval, "enabled": True, "description": description}
    )
    return periodic
