from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.auth import signed_in_user
from dashboard.selectors import home_summary
from dashboard.views.common import dashboard_view


@dashboard_view
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/home.html", {"summary": home_summary(user=signed_in_user(request))})


class LoginView(auth_views.LoginView):
    """Django's login; it names the demo people only on the demo installation (``SYNTHGATE_DEMO``)."""

    redirect_authenticated_user = True
    next_page = "dashboard:home"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "demo": settings.SYNTHGATE_DEMO}
