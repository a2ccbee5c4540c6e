from typing import Any

from django.apps import AppConfig

from governance.init_steps import init_step_register


def _reaper_schedule_ensure() -> dict[str, Any]:
    """``synthgate init``: register the beat entry that ends jobs whose worker is gone."""
    from synth_engine.services import generation_reaper_schedule_ensure

    generation_reaper_schedule_ensure()
    return {}


class SynthEngineConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "synth_engine"
    verbose_name = "Synthesis engine"

    def ready(self) -> None:
        # `synthgate init` lives in governance, below this app: the engine registers its step there.
        init_step_register("generation_schedules", _reaper_schedule_ensure)
