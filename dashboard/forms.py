"""Dashboard forms check shape only; every rule lives in the services they feed."""

from __future__ import annotations

import json
import math
from typing import Any

from django import forms
from django.http import QueryDict

from core.errors import ValidationError
from core.limits import json_loads_checked
from core.schema import COLUMN_TYPES, DATETIME_CALENDARS, DATETIME_RESOLUTIONS
from dashboard.uploads import StagedUpload
from governance.models import RecipientKind, RequestState, Role, Sensitivity
from synth_engine.sources import is_s3_url


def _choice_field(form: forms.Form, name: str) -> forms.ChoiceField:
    """The form's choice field ``name``, typed, so its choices can be filled in at run time."""
    field = form.fields[name]
    if not isinstance(field, forms.ChoiceField):
        raise TypeError(f"{type(form).__name__}.{name} is not a choice field")
    return field


class DatasetRegisterForm(forms.Form):
    name = forms.SlugField(max_length=100, help_text="Letters, digits, '-' and '_'.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    sensitivity = forms.ChoiceField(choices=Sensitivity.choices, initial=Sensitivity.CONFIDENTIAL)
    file = forms.FileField(required=False, label="Table (CSV, optionally gzip-compressed)")
    schema_file = forms.FileField(required=False, label="Schema (JSON file)")
    schema_json = forms.CharField(
        required=False,
        label="…or paste the schema JSON",
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text="Leave both empty to infer types; every column is then 'other'.",
    )
    epsilon_cap = forms.CharField(label="ε cap (total privacy budget)", initial="10")
    delta_cap = forms.CharField(label="δ cap", initial="1e-4")
    declared_rows = forms.CharField(
        required=False,
        label="Row count declared public (optional)",
        help_text="Only if the table's exact row count is already published (a census count): it must be the "
        "exact count or nothing is registered; then no DP estimate of the size is charged. Leave empty otherwise.",
    )
    cap_override_reason = forms.CharField(
        required=False,
        label="Reason to accept implausible caps",
        help_text="Only if you mean an ε cap above the plausible maximum or δ ≥ 1/rows; it is logged.",
    )
    overlap_override_reason = forms.CharField(
        required=False,
        label="Reason to register despite overlapping rows",
        help_text="Only for a partial overlap with another dataset whose people are truly distinct; logged.",
    )

    def __init__(self, *args: Any, staged: StagedUpload | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The table kept from an earlier attempt (``dashboard.uploads``); a new file replaces it.
        self.staged = staged

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if not data.get("file") and self.staged is None and "file" not in self.errors:
            self.add_error("file", "Choose the table to register.")
        text = data.get("schema_json") or ""
        upload = data.get("schema_file")
        if upload:
            text = upload.read().decode("utf-8", errors="replace")
            field = "schema_file"
            # Shown in the text box if the form comes back, so the schema need not be chosen again.
            self.data = {**self.data.dict(), "schema_json": text} if isinstance(self.data, QueryDict) else self.data
        else:
            field = "schema_json"
        data["schema"] = None
        if text.strip():
            try:
                data["schema"] = json_loads_checked(text, what="The schema")
            except json.JSONDecodeError as error:
                self.add_error(field, f"This is not valid JSON: {error.msg} (line {error.lineno}).")
                return data
            except ValueError as error:
                self.add_error(field, f"This is not valid JSON: {error}.")
                return data
            except ValidationError as error:
                self.add_error(field, error.message)
                return data
            if not isinstance(data["schema"], dict):
                self.add_error(field, 'The schema must be a JSON object with a "columns" list.')
        return data


class SourceRegisterForm(forms.Form):
    """A table or Parquet data registered where it lives (``synth_engine.sources.source_register``)."""

    name = forms.SlugField(max_length=100, help_text="Letters, digits, '-' and '_'.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    sensitivity = forms.ChoiceField(choices=Sensitivity.choices, initial=Sensitivity.CONFIDENTIAL)
    connection = forms.ChoiceField(
        required=False,
        label="Source database",
        help_text="A connection the platform's settings name (SYNTHGATE_SOURCE_DATABASES); its address and "
        "credentials stay there.",
    )
    table = forms.CharField(required=False, max_length=300, help_text="table or schema.table (a view is fine).")
    path = forms.CharField(
        required=False,
        max_length=1000,
        label="…or Parquet files",
        help_text="An absolute path (a file, a directory or a glob) under a directory the settings allow, "
        "or an s3://bucket/prefix URL under a prefix they allow.",
    )
    engine = forms.ChoiceField(
        required=False,
        label="Counted by",
        choices=[
            ("duckdb", "DuckDB, embedded in the worker (files on disk or on S3)"),
            ("spark", "Apache Spark, on the workers' Spark master (files on disk every executor sees)"),
        ],
        initial="duckdb",
        help_text="For Parquet files only: the engine that checks, fingerprints and counts them where they are.",
    )
    spark_table = forms.CharField(
        required=False,
        max_length=300,
        label="…or a Spark catalog table",
        help_text="database.table (or catalog.database.table) in a database the settings allow "
        "(SYNTHGATE_SOURCE_SPARK_DATABASES), counted by the workers' Spark.",
    )
    schema_json = forms.CharField(
        required=False,
        label="Schema (JSON)",
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"}),
        help_text="Required: the columns to model, with their types and any public domain. "
        "'Propose a schema' fills it from the table's column types; review it before registering.",
    )
    epsilon_cap = forms.CharField(label="ε cap (total privacy budget)", initial="10")
    delta_cap = forms.CharField(label="δ cap", initial="1e-4")
    declared_rows = forms.CharField(
        required=False,
        label="Row count declared public (optional)",
        help_text="Only if the table's exact row count is already published (a census count): it must be the "
        "exact count or nothing is registered; then no DP estimate of the size is charged. Leave empty otherwise.",
    )
    cap_override_reason = forms.CharField(
        required=False,
        label="Reason to accept implausible caps",
        help_text="Only if you mean an ε cap above the plausible maximum or δ ≥ 1/rows; it is logged.",
    )
    overlap_override_reason = forms.CharField(
        required=False,
        label="Reason to register despite overlapping rows",
        help_text="Only for a partial overlap with another dataset whose people are truly distinct; logged.",
    )

    def __init__(self, *args: Any, connections: list[str], parquet: bool, spark: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        empty = "— choose a source database —" if connections else "— none is configured —"
        _choice_field(self, "connection").choices = [("", empty)] + [(name, name) for name in connections]
        if not parquet:  # no directory is allowed: the fields would only invite a refusal
            del self.fields["path"]
            del self.fields["engine"]
        if not spark:  # no Spark database is allowed
            del self.fields["spark_table"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        path = (data.get("path") or "").strip()
        if (data.get("spark_table") or "").strip():
            if path or data.get("connection") or (data.get("table") or "").strip():
                self.add_error(
                    "spark_table",
                    "Give one place for the data: a source database and table, Parquet files, or a Spark table.",
                )
            return data
        if not path:
            if not data.get("connection") and "connection" not in self.errors:
                self.add_error("connection", "Choose the source database the table is in.")
            if not (data.get("table") or "").strip():
                self.add_error("table", "Name the table or view (table or schema.table).")
        elif data.get("connection") or (data.get("table") or "").strip():
            self.add_error("path", "Give either a source database and table or Parquet files, not both.")
        elif data.get("engine") == "spark" and is_s3_url(path):
            self.add_error(
                "engine",
                "Spark cannot read files on S3 here: choose DuckDB for an s3:// path, or give a path on disk "
                "that every Spark executor sees.",
            )
        return data

    def parquet_engine(self) -> str | None:
        """The engine chosen: for Parquet files DuckDB unless Spark is chosen, Spark for a catalog table;
        ``None`` for a table of a source database, whose engine the service implies."""
        if (self.cleaned_data.get("spark_table") or "").strip():
            return "spark"
        if not (self.cleaned_data.get("path") or "").strip():
            return None
        return self.cleaned_data.get("engine") or "duckdb"

    def located_table(self) -> str:
        """The table named: the Spark catalog table when one is given, else the source database's."""
        return (self.cleaned_data.get("spark_table") or self.cleaned_data.get("table") or "").strip()

    def schema(self, *, required: bool) -> dict[str, Any] | None:
        """The pasted schema, parsed; a mistake is added to the form (``None``)."""
        text = (self.data.get("schema_json") or "").strip()
        if not text:
            if required:
                self.add_error(
                    "schema_json",
                    "Give the schema: paste it, or propose one from the table's column types and review it.",
                )
            return None
        try:
            schema = json_loads_checked(text, what="The schema")
        except json.JSONDecodeError as error:
            self.add_error("schema_json", f"This is not valid JSON: {error.msg} (line {error.lineno}).")
            return None
        except ValueError as error:
            self.add_error("schema_json", f"This is not valid JSON: {error}.")
            return None
        except ValidationError as error:
            self.add_error("schema_json", error.message)
            return None
        if not isinstance(schema, dict):
            self.add_error("schema_json", 'The schema must be a JSON object with a "columns" list.')
            return None
        return schema


class ColumnDeclareForm(forms.Form):
    """One column's role and public domain; empty fields leave the declaration as it is."""

    column = forms.ChoiceField()
    type = forms.ChoiceField(
        required=False,
        label="Type",
        choices=[("", "— unchanged —"), *((kind, kind) for kind in COLUMN_TYPES)],
        help_text="A type proposed from the rows must be declared (confirmed or changed) before the dataset "
        "can be requested.",
    )
    role = forms.ChoiceField(required=False)
    categories = forms.CharField(
        required=False, max_length=10_000, help_text="Comma-separated, from the codebook; '-' removes them."
    )
    minimum = forms.CharField(
        required=False,
        label="Public minimum",
        help_text="A number, or an ISO 8601 date for a datetime; '-' removes it.",
    )
    maximum = forms.CharField(required=False, label="Public maximum", help_text="'-' removes it.")
    resolution = forms.ChoiceField(
        required=False,
        label="Released resolution (datetime)",
        choices=[
            ("", "— unchanged —"),
            *((unit, f"whole {unit}s") for unit in DATETIME_RESOLUTIONS),
            ("-", "not declared"),
        ],
    )
    calendar = forms.ChoiceField(
        required=False,
        label="Calendar (datetime at day resolution)",
        choices=[("", "— unchanged —"), *((name, f"{name} only") for name in DATETIME_CALENDARS), ("-", "every day")],
    )
    step = forms.CharField(
        required=False,
        label="Grid step (float)",
        help_text="Values are whole multiples of it (answers coded 17.5, 22, ...); '-' removes it.",
    )
    nullable = forms.ChoiceField(
        required=False,
        choices=[("", "— unchanged —"), ("yes", "may be missing"), ("no", "never missing"), ("-", "not declared")],
    )
    domain_source = forms.CharField(required=False, max_length=500, label="Where the domain comes from")

    def __init__(
        self, *args: Any, columns: list[str], roles: list[str], types: dict[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        _choice_field(self, "column").choices = [(name, name) for name in columns]
        _choice_field(self, "role").choices = [("", "— unchanged —")] + [(role, role) for role in roles]
        self.types = types or {}  # column -> type: a declaration that does not fit the column is named here

    def clean_step(self) -> str:
        text = (self.cleaned_data.get("step") or "").strip()
        if text in ("", "-"):
            return text
        try:
            value = float(text)
        except ValueError:
            raise forms.ValidationError(
                f"Write the step as a number, such as 0.5 or 2.5; {text!r} is not one.", code="invalid"
            ) from None
        if not math.isfinite(value) or value <= 0:
            raise forms.ValidationError(
                f"The step must be a number above zero, such as 0.5; {text!r} is not.", code="invalid"
            )
        return text

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        column = data.get("column") or ""
        kind = data.get("type") or self.types.get(column)
        if not kind:
            return data
        for field in ("resolution", "calendar"):
            if data.get(field) and kind != "datetime":
                self.add_error(field, f"Only a date-and-time column has a {field}; {column!r} holds {kind} values.")
        if (data.get("step") or "").strip() and kind != "float":
            whole = " (whole numbers already)" if kind == "integer" else ""
            self.add_error(
                "step", f"Only a column of decimal (float) numbers takes a step; {column!r} holds {kind} values{whole}."
            )
        return data

    def changes(self) -> dict[str, Any]:
        data, changes = self.cleaned_data, {}
        if data.get("type"):
            changes["type"] = data["type"]
        if data.get("role"):
            changes["role"] = data["role"]
        text = (data.get("categories") or "").strip()
        if text:
            changes["categories"] = None if text == "-" else [item.strip() for item in text.split(",") if item.strip()]
        for field, key in (("minimum", "min"), ("maximum", "max")):
            value = (data.get(field) or "").strip()
            if value:
                changes[key] = None if value == "-" else _number_or_text(value)
        if data.get("nullable"):
            changes["nullable"] = {"yes": True, "no": False, "-": None}[data["nullable"]]
        for key in ("resolution", "calendar"):
            if data.get(key):
                changes[key] = None if data[key] == "-" else data[key]
        step = (data.get("step") or "").strip()
        if step:
            changes["step"] = None if step == "-" else _number_or_text(step)
        if (data.get("domain_source") or "").strip():
            changes["domain_source"] = data["domain_source"].strip()
        return changes


def _number_or_text(text: str) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


class RequestCreateForm(forms.Form):
    dataset = forms.ChoiceField()
    purpose = forms.ChoiceField()
    epsilon = forms.CharField(label="ε (privacy budget for this release)", initial="1")
    delta = forms.CharField(label="δ", initial="1e-6")
    n_rows = forms.CharField(label="Synthetic rows", initial="2000")
    generator = forms.ChoiceField()
    recipient_kind = forms.ChoiceField(
        label="Recipient kind", choices=RecipientKind.choices, initial=RecipientKind.INTERNAL
    )
    recipient = forms.CharField(required=False, max_length=200)
    justification = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    rebalance_column = forms.ChoiceField(required=False, label="Rebalance column")
    rebalance_value = forms.ChoiceField(
        required=False,
        label="Class value",
        help_text="Only the label's declared (public) categories; a steward declares them on the dataset page.",
    )
    rebalance_share = forms.CharField(required=False, label="Target share (0–1)")
    seed = forms.IntegerField(required=False, label="Fixed seed (only for reproducible runs)")
    output_format = forms.ChoiceField(
        required=False,
        label="Output format",
        choices=[("csv", "CSV"), ("parquet", "Parquet")],
        initial="csv",
        help_text="The synthetic table's stored and downloaded form.",
    )
    draft = forms.BooleanField(required=False, label="Save as a draft (submit later)")
    # One token per form shown: submitting the same form twice files one request, not two.
    form_token = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)

    def __init__(
        self,
        *args: Any,
        datasets: list[tuple[str, str]],
        purposes: list[tuple[str, str]],
        generators: list[tuple[str, str]],
        label_columns: list[str],
        label_categories: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        _choice_field(self, "dataset").choices = datasets
        _choice_field(self, "purpose").choices = purposes
        _choice_field(self, "generator").choices = generators
        _choice_field(self, "rebalance_column").choices = [("", "— no rebalancing —")] + [(c, c) for c in label_columns]
        empty = "— choose a class —" if label_categories else "— no declared categories: declare them first —"
        _choice_field(self, "rebalance_value").choices = [("", empty)] + [(c, c) for c in label_categories or []]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        column, value, share = (
            data.get("rebalance_column"),
            (data.get("rebalance_value") or "").strip(),
            (data.get("rebalance_share") or "").strip(),
        )
        data["output_format"] = data.get("output_format") or "csv"  # not sent: the default
        data["rebalance"] = None
        if column or value or share:
            for name, given in (("rebalance_column", column), ("rebalance_value", value), ("rebalance_share", share)):
                if not given:
                    self.add_error(name, "Give the column, the class value and its share to rebalance.")
            if column and value and share:
                data["rebalance"] = {"column": column, "shares": {value: share}}
        return data


class ReasonForm(forms.Form):
    """A decision that needs a reason (reject, accept risk, revoke) or may have one (approve)."""

    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class RequestFilterForm(forms.Form):
    state = forms.ChoiceField(required=False, choices=[("", "Any state"), *RequestState.choices])
    dataset = forms.CharField(required=False)
    mine = forms.BooleanField(required=False, label="Only mine")


class ComplianceFilterForm(forms.Form):
    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To (inclusive)", widget=forms.DateInput(attrs={"type": "date"}))
    dataset = forms.ChoiceField(required=False)
    purpose = forms.ChoiceField(required=False)

    def __init__(self, *args: Any, datasets: list[str], purposes: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choice_field(self, "dataset").choices = [("", "All datasets")] + [(d, d) for d in datasets]
        _choice_field(self, "purpose").choices = [("", "All purposes")] + [(p, p) for p in purposes]


class AuditLogFilterForm(forms.Form):
    object_type = forms.ChoiceField(required=False, label="Object type")
    object_id = forms.CharField(required=False, max_length=64, label="Object id")
    actor = forms.CharField(required=False, max_length=150, label="Actor (username)")
    action = forms.ChoiceField(required=False, label="Action")
    start = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label="To (inclusive)", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, object_types: list[str], actions: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choice_field(self, "object_type").choices = [("", "Any object")] + [(o, o) for o in object_types]
        _choice_field(self, "action").choices = [("", "Any action")] + [(a, a) for a in actions]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            self.add_error("end", "The end of the period comes before its start.")
        return data


class RiskAcceptForm(forms.Form):
    """One reason per failed check: a risk acceptance names each check it accepts."""

    def __init__(self, *args: Any, failed_checks: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in failed_checks:
            self.fields[name] = forms.CharField(
                label=f"Why is the failure of {name} acceptable?",
                widget=forms.Textarea(attrs={"rows": 2}),
                required=False,
            )


class UserCreateForm(forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField(required=False)
    roles = forms.MultipleChoiceField(choices=Role.choices, widget=forms.CheckboxSelectMultiple)
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput,
        help_text="For the dashboard login; leave empty to set a random one (the person resets it).",
    )


class UserRolesForm(forms.Form):
    username = forms.CharField(max_length=150, widget=forms.HiddenInput)
    roles = forms.MultipleChoiceField(choices=Role.choices)


class PurposeCreateForm(forms.Form):
    name = forms.SlugField(max_length=100, help_text="Letters, digits, '-' and '_'.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    max_epsilon = forms.CharField(label="Largest ε one request may ask for", initial="1")
    approvals_required = forms.IntegerField(label="Approvals needed (distinct approvers)", initial=2)
    allowed_recipients = forms.MultipleChoiceField(
        choices=RecipientKind.choices, initial=[RecipientKind.INTERNAL], widget=forms.CheckboxSelectMultiple
    )
    release_days = forms.IntegerField(label="Days a release stays downloadable", initial=90)
