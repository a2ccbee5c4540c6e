from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.auth import signed_in_user
from core.errors import ApplicationError
from dashboard.selectors import ACTIVE_JOB_STATUSES, job_live_state
from dashboard.views.common import dashboard_view, paginate
from governance.permissions import run_measurements_visible
from synth_engine.selectors import job_get, job_list
from synth_engine.services import generation_job_cancel


@dashboard_view
def job_list_page(request: HttpRequest) -> HttpResponse:
    jobs = job_list(user=signed_in_user(request)).select_related("request__requester").order_by("-created_at", "-id")
    context = {"page": paginate(request, jobs), "measured": run_measurements_visible(signed_in_user(request))}
    return render(request, "dashboard/jobs/list.html", context)


@dashboard_view
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    viewer = signed_in_user(request)
    job = job_get(user=viewer, job_id=job_id)
    live = job_live_state(job=job, viewer=viewer)
    return render(
        request,
        "dashboard/jobs/detail.html",
        {
            "job": job,
            "live": live,
            "active": job.status in ACTIVE_JOB_STATUSES,
            "watch": not live["finished"],
            "measured": run_measurements_visible(viewer),
        },
    )


@dashboard_view
def job_progress(request: HttpRequest, job_id: int) -> HttpResponse:
    """The small JSON the progress bars poll every second."""
    viewer = signed_in_user(request)
    return JsonResponse(job_live_state(job=job_get(user=viewer, job_id=job_id), viewer=viewer))


@dashboard_view
@require_POST
def job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    job_get(user=signed_in_user(request), job_id=job_id)
    try:
        job = generation_job_cancel(actor=signed_in_user(request), job_id=job_id)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request, f"Job #{job.pk}: cancel requested ({job.status}); a running job stops at its next phase."
        )
    return redirect("dashboard:job-detail", job_id=job_id)
