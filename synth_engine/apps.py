from django.apps import AppConfig


class SynthEngineConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "synth_engine"
    verbose_name = "Synthesis engine"
