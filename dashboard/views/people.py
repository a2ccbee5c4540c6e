"""People and purposes in the dashboard: the same services as `synthgate user` and `synthgate purpose`.

Stewards create users, change roles (never their own: a second steward does it) and define
purposes; auditors read both lists. Every change is written to the audit log by the service.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render

from core.auth import signed_in_user
from core.errors import ApplicationError, PermissionDeniedError
from dashboard.forms import PurposeCreateForm, UserCreateForm, UserRolesForm
from dashboard.views.common import add_service_error, dashboard_view
from governance import services
from governance.models import Purpose, Role
from governance.permissions import user_has_role


def _may_read(request: HttpRequest) -> bool:
    user = signed_in_user(request)
    return user_has_role(user, Role.STEWARD) or user_has_role(user, Role.AUDITOR)


@dashboard_view
def people(request: HttpRequest) -> HttpResponse:
    if not _may_read(request):
        raise PermissionDeniedError("Only stewards and auditors see the list of people.")
    actor = signed_in_user(request)
    steward = user_has_role(actor, Role.STEWARD)
    create_form, status = UserCreateForm(prefix="new"), 200
    if request.method == "POST":
        if not steward:
            raise PermissionDeniedError("Only a data steward can create users and change roles.")
        if "new-username" in request.POST:
            create_form = UserCreateForm(request.POST, prefix="new")
            status = _user_create(request, create_form)
        else:
            status = _roles_set(request, UserRolesForm(request.POST))
        if status == 302:
            return redirect("dashboard:people")
    users = get_user_model().objects.prefetch_related("groups").order_by("username")
    rows = [
        {"user": user, "roles": sorted(group.name for group in user.groups.all()), "self": user.pk == actor.pk}
        for user in users
    ]
    # Not "roles": base.html sets that name to the signed-in user's own roles.
    context = {"rows": rows, "role_choices": Role.values, "steward": steward, "create_form": create_form}
    return render(request, "dashboard/people.html", context, status=status)


def _user_create(request: HttpRequest, form: UserCreateForm) -> int:
    """Create the user the form names (302), or leave every mistake on the form (4xx)."""
    if not form.is_valid():
        return 400
    data = form.cleaned_data
    try:
        user, _ = services.user_create(
            actor=signed_in_user(request),
            username=data["username"],
            roles=data["roles"],
            email=data["email"],
            password=data["password"] or None,
        )
    except ApplicationError as error:
        add_service_error(form, error)
        return error.status
    messages.success(request, f"Created {user.username} ({', '.join(data['roles'])}).")
    return 302


def _roles_set(request: HttpRequest, form: UserRolesForm) -> int:
    """Replace one user's roles (302), or say why not in the page's messages (4xx)."""
    if not form.is_valid():
        messages.error(request, "Choose at least one role.")
        return 400
    data = form.cleaned_data
    try:
        user = services.user_roles_set(actor=signed_in_user(request), username=data["username"], roles=data["roles"])
    except ApplicationError as error:
        messages.error(request, error.message)
        return error.status
    messages.success(request, f"{user.username} now holds: {', '.join(sorted(data['roles']))}.")
    return 302


@dashboard_view
def purposes(request: HttpRequest) -> HttpResponse:
    actor = signed_in_user(request)
    steward = user_has_role(actor, Role.STEWARD)
    form, status = PurposeCreateForm(), 200
    if request.method == "POST":
        if not steward:
            raise PermissionDeniedError("Only a data steward can define purposes.")
        form = PurposeCreateForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                purpose = services.purpose_create(
                    actor=actor,
                    name=data["name"],
                    max_epsilon=data["max_epsilon"],
                    approvals_required=data["approvals_required"],
                    allowed_recipients=data["allowed_recipients"],
                    description=data["description"],
                    release_days=data["release_days"],
                )
            except ApplicationError as error:
                add_service_error(form, error)
                status = error.status
            else:
                messages.success(request, f"Purpose {purpose.name!r} defined; requests may now name it.")
                return redirect("dashboard:purposes")
        else:
            status = 400
            _purpose_mistakes(form, request.POST)
    context = {"purposes": Purpose.objects.order_by("name"), "steward": steward, "form": form}
    return render(request, "dashboard/purposes.html", context, status=status)


def _purpose_mistakes(form: PurposeCreateForm, request_data: QueryDict) -> None:
    """Every mistake the service finds in the fields, beside the form's own errors (all at once)."""
    try:
        services.purpose_fields_check(
            name=form.data.get("name", ""),
            max_epsilon=form.data.get("max_epsilon", ""),
            approvals_required=form.data.get("approvals_required", ""),
            allowed_recipients=list(request_data.getlist("allowed_recipients")),
            description=form.data.get("description", ""),
            release_days=form.data.get("release_days", ""),
        )
    except ApplicationError as error:
        add_service_error(form, error)
