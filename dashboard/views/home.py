from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.auth import signed_in_user
from dashboard.selectors import home_summary
from dashboard.views.common import dashboard_view


@dashboard_view
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/home.html", {"summary": home_summary(user=signed_in_user(request))})
