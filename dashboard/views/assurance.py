"""The privacy-assurance page: the latest ``synthgate assure`` result of every generator version.

The figures come from games on the bundled public sample, so every signed-in user may read them.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dashboard.views.common import dashboard_view
from synth_engine.generators import GENERATORS
from synth_engine.selectors import assurance_latest_list


@dashboard_view
def assurance_list(request: HttpRequest) -> HttpResponse:
    runs = assurance_latest_list()
    tested = {run.generator for run in runs}
    untested = [
        {"name": name, "private": cls.is_private} for name, cls in sorted(GENERATORS.items()) if name not in tested
    ]
    return render(request, "dashboard/assurance.html", {"runs": runs, "untested": untested})
