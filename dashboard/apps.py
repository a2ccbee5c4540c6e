from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """Server-rendered pages over the same selectors and services as the API. No models."""

    name = "dashboard"
    verbose_name = "Dashboard"
