from __future__ import annotations

from django.contrib import messages
from django.http import FileResponse, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from audits.models import DownloadKind, Release, ReleaseDatasheet
from audits.selectors import release_exceptions, release_get, release_list
from audits.services import datasheet_verify, releases
from core.auth import signed_in_user
from core.errors import ApplicationError
from dashboard.forms import ReasonForm
from dashboard.profiles import release_profile
from dashboard.views.common import add_service_error, dashboard_view, paginate
from governance.models import Role
from governance.output_formats import SUFFIXES, key_format
from governance.permissions import user_has_role
from governance.storage import version_storage


@dashboard_view
def release_list_page(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    releases = (
        release_list(user=user)
        .select_related("request__dataset", "request__requester", "audit_run")
        .prefetch_related("audit_run__checks", "audit_run__risk_acceptances__approver")
        .order_by("-created_at", "-id")
    )
    page = paginate(request, releases)
    exceptions = {release.pk: release_exceptions(release=release, user=user) for release in page}
    return render(request, "dashboard/releases/list.html", {"page": page, "exceptions": exceptions})


@dashboard_view
def release_detail(request: HttpRequest, release_id: int) -> HttpResponse:
    return _release_page(request, release_get(user=signed_in_user(request), release_id=release_id))


def _release_page(
    request: HttpRequest,
    release: Release,
    *,
    form: ReasonForm | None = None,
    error: ApplicationError | None = None,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "dashboard/releases/detail.html",
        {
            "release": release,
            "exceptions": release_exceptions(release=release, user=signed_in_user(request)),
            "verification": _verification(release),
            "downloads": paginate(request, release.downloads.select_related("user").order_by("-created_at", "-id")),
            "can_revoke": release.revoked_at is None
            and user_has_role(signed_in_user(request), Role.STEWARD, Role.APPROVER),
            "revoke_form": form or ReasonForm(prefix="revoke"),
            "action_error": error,
            "profiles": release_profile(release) if release.revoked_at is None else None,
        },
        status=status,
    )


def _verification(release: Release) -> dict:
    """The stored datasheet verified now: signature intact, trusted, and its SHA-256 on record."""
    sheet = ReleaseDatasheet.objects.filter(release=release).first()
    if sheet is None:
        return {"ok": False, "problems": [f"Release #{release.pk} has no signed release datasheet."]}
    storage = version_storage()
    if not storage.exists(sheet.storage_key):
        missing = f"The release datasheet file is missing from storage ({sheet.storage_key})."
        return {"ok": False, "problems": [missing]}
    return datasheet_verify(pdf_bytes=storage.read_bytes(sheet.storage_key), release_id=release.pk)


@dashboard_view
def release_download(request: HttpRequest, release_id: int, kind: str) -> HttpResponseBase:
    try:
        path = releases.release_download(actor=signed_in_user(request), release_id=release_id, kind=kind)
    except ApplicationError as error:
        if error.status == 404:
            raise
        messages.error(request, error.message)
        return redirect("dashboard:release-detail", release_id=release_id)
    release = release_get(user=signed_in_user(request), release_id=release_id)
    name = release.request.dataset.name
    filename = (
        f"{name}-release-{release.pk}{SUFFIXES[key_format(release.version.storage_key)]}"
        if kind == DownloadKind.DATA
        else f"{name}-release-{release.pk}-datasheet.pdf"
    )
    return FileResponse(path.open("rb"), as_attachment=True, filename=filename)


@dashboard_view
@require_POST
def release_revoke(request: HttpRequest, release_id: int) -> HttpResponse:
    release = release_get(user=signed_in_user(request), release_id=release_id)
    form = ReasonForm(request.POST, prefix="revoke")
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        releases.release_revoke(actor=signed_in_user(request), release_id=release_id, reason=reason)
    except ApplicationError as error:
        release.refresh_from_db()
        if error.extra.get("field") in form.fields:
            add_service_error(form, error)  # a missing reason: shown at the reason field
            return _release_page(request, release, form=form, status=error.status)
        return _release_page(request, release, error=error, status=error.status)
    messages.success(request, f"Release #{release_id} revoked; no further downloads are possible.")
    return redirect("dashboard:release-detail", release_id=release_id)
