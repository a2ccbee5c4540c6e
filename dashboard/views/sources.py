"""Registering data that stays where it lives, from the dashboard: the form calls the service the
CLI (`synthgate source register`) and the API (`POST /api/sources/`) call, ``source_register``.

A steward chooses a source database by the name the settings give it (the URL and credentials stay
in the settings) and a table, or Parquet files under an allowed directory (or S3 prefix) with the
engine that counts them (DuckDB or Spark), or a table of the workers' Spark catalog in an allowed
database, and gives the schema:
pasted, or proposed from the engine's catalog (column names and types only, no value read) and
reviewed. Every mistake is shown at once beside its field.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render

from core.auth import signed_in_user
from core.errors import ApplicationError, PermissionDeniedError
from dashboard.forms import SourceRegisterForm
from dashboard.views.common import add_service_error, dashboard_view
from dashboard.views.datasets import dataset_field_mistakes
from governance.models import Role
from governance.permissions import user_has_role
from synth_engine.sources import source_database_names, source_register, source_schema_propose

FIELDS = {"schema": "schema_json"}
LOCATION = ("connection", "table", "path", "engine", "spark_table")


@dashboard_view
def source_register_view(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    if not user_has_role(user, Role.STEWARD):
        raise PermissionDeniedError("Only a data steward can register datasets.")
    form = SourceRegisterForm(
        request.POST or None,
        connections=source_database_names(),
        parquet=bool(settings.SYNTHGATE_SOURCE_PARQUET_ROOTS or settings.SYNTHGATE_SOURCE_S3_ROOTS),
        spark=bool(settings.SYNTHGATE_SOURCE_SPARK_DATABASES),
    )
    status, proposed = 200, False
    if request.method == "POST":
        valid = form.is_valid()
        if request.POST.get("action") == "propose":
            # Only where the data is matters here; the rest is checked when registering.
            for field in [field for field in form.errors if field not in LOCATION]:
                del form.errors[field]
            proposed = not form.errors and _propose(request, form)
        else:
            schema = form.schema(required=True)
            if valid and schema is not None:
                try:
                    result = source_register(actor=user, schema=schema, engine=form.parquet_engine(), **_fields(form))
                except ApplicationError as error:
                    add_service_error(form, error, fields=_fields_named(form), fallback="schema_json")
                else:
                    version = result.version
                    note = "registered" if result.created else "was already registered (same data and schema)"
                    messages.success(
                        request,
                        f"{version} {note} by reference: {version.n_rows:,} rows × {version.n_columns} columns, "
                        "left where they live; only counts, a checksum and the audit's samples are read.",
                    )
                    return redirect("dashboard:dataset-detail", name=version.dataset.name)
            else:
                dataset_field_mistakes(form)
        status = 400 if form.errors else 200
    return render(
        request, "dashboard/datasets/register_source.html", {"form": form, "proposed": proposed}, status=status
    )


def _fields_named(form: SourceRegisterForm) -> dict[str, str]:
    """Where the service's field names go on the form: an engine's refusal beside the engine chosen,
    or beside the path when the form has no engine to choose; a table's beside the Spark table when
    that is the one given."""
    spark = bool((form.cleaned_data.get("spark_table") or "").strip())
    return {
        **FIELDS,
        "engine": "spark_table" if spark else "engine" if "engine" in form.fields else "path",
        "table": "spark_table" if spark else "table",
    }


def _fields(form: SourceRegisterForm) -> dict[str, Any]:
    data = form.cleaned_data
    return {
        "name": data["name"],
        "connection": data.get("connection") or "",
        "table": form.located_table(),
        "path": (data.get("path") or "").strip(),
        "epsilon_cap": data["epsilon_cap"],
        "delta_cap": data["delta_cap"],
        "description": data["description"],
        "sensitivity": data["sensitivity"],
        "cap_override_reason": data["cap_override_reason"],
        "overlap_override_reason": data["overlap_override_reason"],
        "declared_rows": data["declared_rows"].strip() or None,
    }


def _propose(request: HttpRequest, form: SourceRegisterForm) -> bool:
    """Fill the schema box with the schema the catalog suggests; ``False`` with the refusal on the form."""
    data = form.cleaned_data
    try:
        schema = source_schema_propose(
            actor=signed_in_user(request),
            engine=form.parquet_engine(),
            connection=data.get("connection") or "",
            table=form.located_table(),
            path=(data.get("path") or "").strip(),
        )
    except ApplicationError as error:
        add_service_error(form, error, fields=_fields_named(form), fallback=_fields_named(form)["table"])
        return False
    posted = form.data.dict() if isinstance(form.data, QueryDict) else dict(form.data)
    form.data = {**posted, "schema_json": json.dumps(schema, indent=2)}
    return True
