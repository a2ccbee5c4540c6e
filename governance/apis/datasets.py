"""Datasets, their versions and their privacy budget."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.apis import (
    PAGE_PARAMETERS,
    READ_ERRORS,
    WRITE_ERRORS,
    error_responses,
    filtered,
    list_parameters,
    paginated,
    paginated_response,
)
from core.auth import signed_in_user
from core.errors import NotFoundError
from core.limits import json_loads_checked
from core.schema import COLUMN_ROLES, COLUMN_TYPES, DATETIME_CALENDARS, DATETIME_RESOLUTIONS, proposed_type_columns
from governance import selectors, services
from governance.apis.common import ExactDecimalField, delta_field, epsilon_field
from governance.filters import DatasetFilter
from governance.models import Dataset, DatasetVersion, Sensitivity
from governance.permissions import (
    lineage_visible,
    version_hash_visible,
    version_rows_contradiction_visible,
    version_rows_visible,
    version_schema_visible,
)

# A declared schema is a small JSON document; refuse to read a huge one into memory.
MAX_SCHEMA_BYTES = 1024 * 1024


class DatasetOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    sensitivity = serializers.CharField()
    owner = serializers.CharField(source="owner.username")
    epsilon_cap = epsilon_field()
    delta_cap = delta_field()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Dataset"


class VersionOutputSerializer(serializers.Serializer):
    dataset = serializers.CharField(source="dataset.name")
    number = serializers.IntegerField()
    kind = serializers.CharField()
    content_hash = serializers.CharField(
        help_text="sha256 of the canonical content; a real version read by anyone but its stewards, approvers "
        "and auditors: its keyed fingerprint 'hmac-sha256:…' (the sha256 of real rows lets whoever knows all "
        "other rows test guesses of the last)"
    )
    n_rows = serializers.IntegerField(
        allow_null=True, help_text="null for real data unless you are a steward, approver or auditor (it is private)"
    )
    n_columns = serializers.IntegerField()
    size_bytes = serializers.IntegerField(allow_null=True, help_text="null when n_rows is")
    schema = serializers.JSONField(
        help_text="columns with name, type and role; missing_values. A type proposed from the rows and not yet "
        "declared has type_proposed true, and is null for anyone but a steward"
    )
    schema_inferred = serializers.BooleanField()
    dropped_columns = serializers.ListField(
        child=serializers.CharField(), help_text="identifier columns dropped before storage"
    )
    original_filename = serializers.CharField()
    rows_checked = serializers.BooleanField(
        help_text="the stored rows were checked against the declarations and hold them (false for a version "
        "stored before registration checked them, until filing or `synthgate dataset check` does)"
    )
    rows_contradiction = serializers.CharField(
        help_text="why the stored rows contradict the declarations; empty unless you are a steward"
    )
    # The serializer's metaclass moves declared fields off the class, so this ``parent`` (the output
    # key) never shadows Field.parent at run time; the stubs cannot see that.
    parent = serializers.IntegerField(source="parent.number", allow_null=True, default=None)  # type: ignore[assignment]
    lineage = serializers.JSONField(
        help_text="where the version came from; statistics of the real rows only for stewards, approvers, auditors"
    )
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "DatasetVersion"

    def to_representation(self, instance: DatasetVersion) -> dict[str, Any]:
        """The version; a real version's row count and byte size only for those who may read them."""
        data: dict[str, Any] = super().to_representation(instance)
        viewer = self.context.get("viewer")
        if viewer is None or not version_rows_visible(viewer, instance):
            data["n_rows"] = data["size_bytes"] = None
        data["lineage"] = lineage_visible(viewer, instance)
        data["content_hash"] = version_hash_visible(viewer, instance)
        data["schema"] = version_schema_visible(viewer, instance)
        data["rows_contradiction"] = version_rows_contradiction_visible(viewer, instance)
        return data


@extend_schema_field({"type": "string", "description": "the schema as JSON text, or an uploaded .json file"})
class SchemaField(serializers.Field):
    """A declared schema sent as a JSON string form field, an uploaded JSON file, or a JSON object."""

    what = "The schema"
    shape = 'a JSON object with a "columns" list'

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, UploadedFile):
            if data.size is None or data.size > MAX_SCHEMA_BYTES:  # an upload of unknown size is refused
                raise serializers.ValidationError(f"{self.what} file is over {MAX_SCHEMA_BYTES:,} bytes.")
            data = data.read()
        if isinstance(data, bytes | str):
            try:
                data = json_loads_checked(data, what=self.what)
            except ValueError as error:
                raise serializers.ValidationError(f"{self.what} is not valid JSON: {error}.") from error
        if not isinstance(data, dict):
            raise serializers.ValidationError(f"{self.what} must be {self.shape}.")
        return data


@extend_schema_field(
    {
        "type": "string",
        "description": 'JSON text: column → what to declare, e.g. {"income": {"role": "label", '
        '"categories": ["<=50K", ">50K"]}} (keys as in dataset_declare)',
    }
)
class DeclarationsField(SchemaField):
    """Column declarations sent with a registration, as JSON text (multipart) or an object."""

    what = "The declarations"
    shape = "a JSON object mapping column names to declarations"

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(
    {
        "oneOf": [{"type": "number"}, {"type": "string", "description": "ISO 8601, for datetime columns"}],
        "nullable": True,
    }
)
class BoundField(serializers.Field):
    """A public bound: a number, or an ISO 8601 text for a datetime column; null removes it."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, int | float | str):
            raise serializers.ValidationError(f"A bound is a number (or ISO 8601 text for a datetime); got {data!r}.")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class ColumnDeclarationSerializer(serializers.Serializer):
    """One column's declaration. Give only the keys to change; ``null`` removes a declaration (the
    domain then becomes private: estimated with differential privacy and paid for)."""

    type = serializers.ChoiceField(
        choices=COLUMN_TYPES,
        required=False,
        help_text="the column's type: declares a type proposed from the rows (the same or another; the stored "
        "values must fit it)",
    )
    role = serializers.ChoiceField(choices=COLUMN_ROLES, allow_null=True, required=False)
    categories = serializers.ListField(
        child=serializers.CharField(max_length=1000),
        allow_null=True,
        allow_empty=False,
        max_length=10_000,
        required=False,
        help_text="every category the codebook lists (it must cover every value present)",
    )
    min = BoundField(required=False, allow_null=True, help_text="public lower bound")
    max = BoundField(required=False, allow_null=True, help_text="public upper bound")
    nullable = serializers.BooleanField(allow_null=True, required=False, help_text="whether the column may be missing")
    resolution = serializers.ChoiceField(
        choices=list(DATETIME_RESOLUTIONS),
        allow_null=True,
        required=False,
        help_text="a datetime column's released resolution (whole days, hours, minutes or seconds, UTC)",
    )
    calendar = serializers.ChoiceField(
        choices=list(DATETIME_CALENDARS),
        allow_null=True,
        required=False,
        help_text="a day-resolution datetime column's days: weekdays (Monday to Friday) only",
    )
    step = serializers.FloatField(
        allow_null=True,
        required=False,
        help_text="a float column's grid: it holds only whole multiples of this step and is released on it",
    )
    domain_source = serializers.CharField(
        max_length=500, allow_null=True, required=False, help_text="where the public domain comes from (a codebook)"
    )

    class Meta:
        ref_name = "ColumnDeclaration"

    def to_internal_value(self, data: Any) -> Any:
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        if unknown:
            raise serializers.ValidationError(
                f"Cannot declare {', '.join(map(str, unknown))}; declarable: {', '.join(self.fields)}."
            )
        return super().to_internal_value(data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError(f"Nothing to declare; give any of {', '.join(self.fields)}.")
        return attrs


def _declarations(value: dict[str, Any]) -> dict[str, Any]:
    """Each column's declaration checked as ``ColumnDeclarationSerializer`` checks it."""
    checked = serializers.DictField(child=ColumnDeclarationSerializer(), allow_empty=False)
    return dict(checked.run_validation(value))


class RegistrationOutputSerializer(serializers.Serializer):
    created = serializers.BooleanField(help_text="false when identical content was already stored")
    dataset = DatasetOutputSerializer(source="version.dataset")
    version = VersionOutputSerializer()
    dropped_columns = serializers.ListField(child=serializers.CharField(), source="version.dropped_columns")
    warnings = serializers.ListField(child=serializers.CharField())
    suggested_declarations = serializers.DictField(
        source="suggestions",
        child=serializers.DictField(),
        help_text="column → resolution, calendar or step its rows suggest, NOT applied to the stored schema; "
        'declare them, if public knowledge, by POSTing {"columns": this} to /api/datasets/NAME/declare/ '
        "(only the registering steward sees this)",
    )

    class Meta:
        ref_name = "DatasetRegistration"


@contextlib.contextmanager
def saved_upload(upload: UploadedFile) -> Iterator[Path]:
    """The upload copied to a private temporary file, deleted afterwards whatever happens."""
    handle, name = tempfile.mkstemp(prefix="synthgate-upload-")
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as stream:
            for chunk in upload.chunks():
                stream.write(chunk)
        yield path
    finally:
        path.unlink(missing_ok=True)


def _registered(*, request: Request, upload: UploadedFile, **fields: Any) -> Response:
    with saved_upload(upload) as path:
        result = services.dataset_register(
            actor=signed_in_user(request), path=path, filename=upload.name or "", **fields
        )
    data = RegistrationOutputSerializer(result, context={"viewer": signed_in_user(request)}).data
    return Response(data, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class DatasetListApi(APIView):
    @extend_schema(
        operation_id="dataset_list",
        parameters=list_parameters(DatasetFilter),
        responses={200: paginated(DatasetOutputSerializer, "PaginatedDatasetList"), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        """Datasets, filtered by name or sensitivity; any role."""
        queryset = filtered(DatasetFilter, request, selectors.dataset_list(user=signed_in_user(request)))
        return paginated_response(
            request=request, view=self, queryset=queryset, serializer_class=DatasetOutputSerializer
        )


class DatasetRegisterApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(allow_empty_file=True, help_text="CSV or Parquet, optionally gz/bz2/xz/zip")
        name = serializers.SlugField(max_length=100)
        epsilon_cap = epsilon_field()
        delta_cap = delta_field()
        schema = SchemaField(required=False, help_text="omit to infer one (every role 'other')")
        description = serializers.CharField(required=False, allow_blank=True, default="")
        sensitivity = serializers.ChoiceField(choices=Sensitivity.choices, default=Sensitivity.CONFIDENTIAL)
        cap_override_reason = serializers.CharField(
            required=False,
            allow_blank=True,
            default="",
            help_text="accept implausible caps (ε above the plausible maximum, δ ≥ 1/rows); logged",
        )
        overlap_override_reason = serializers.CharField(
            required=False,
            allow_blank=True,
            default="",
            help_text="register although some rows match another dataset's (partial overlap only); logged",
        )
        declarations = DeclarationsField(
            required=False,
            help_text="roles and public domains to declare on the given or inferred schema before the table is "
            "checked (logged with the version); nothing else becomes public",
        )
        declared_rows = serializers.IntegerField(
            required=False,
            allow_null=True,
            min_value=1,
            help_text="the table's exact row count, declared public (a published census count): refused unless "
            "it is the count; then no DP estimate of the size is charged",
        )

        class Meta:
            ref_name = "DatasetRegisterInput"

        def validate_declarations(self, value: dict[str, Any]) -> dict[str, Any]:
            return _declarations(value)

    @extend_schema(
        operation_id="dataset_register",
        request={"multipart/form-data": InputSerializer},
        responses={
            201: RegistrationOutputSerializer,
            200: RegistrationOutputSerializer,
            **WRITE_ERRORS,
            **error_responses(413, 503),
        },
    )
    def post(self, request: Request) -> Response:
        """Register a dataset (steward) from an uploaded table, caps and an optional schema.

        201 when a version is created; 200 when identical content was already stored.
        """
        serializer = DatasetRegisterApi.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        return _registered(request=request, upload=fields.pop("file"), **fields)


class DatasetCollectionApi(DatasetListApi, DatasetRegisterApi):
    """``/datasets/``: GET lists (DatasetListApi), POST registers (DatasetRegisterApi)."""

    parser_classes = DatasetRegisterApi.parser_classes


class DatasetDetailApi(APIView):
    class OutputSerializer(DatasetOutputSerializer):
        latest_source_version = serializers.SerializerMethodField()
        column_roles = serializers.SerializerMethodField(
            help_text="role of every column of the latest source, dropped identifiers included"
        )

        class Meta:
            ref_name = "DatasetDetail"

        @extend_schema_field(VersionOutputSerializer(allow_null=True))
        def get_latest_source_version(self, dataset: Dataset) -> dict[str, Any] | None:
            latest = self.context["latest"]
            return None if latest is None else VersionOutputSerializer(latest, context=self.context).data

        @extend_schema_field(serializers.DictField(child=serializers.CharField()))
        def get_column_roles(self, dataset: Dataset) -> dict[str, str]:
            return _column_roles(self.context["latest"])

    @extend_schema(operation_id="dataset_get", responses={200: OutputSerializer, **READ_ERRORS})
    def get(self, request: Request, name: str) -> Response:
        """A dataset's caps, its latest source version with schema, and every column's role."""
        dataset = selectors.dataset_get(user=signed_in_user(request), name=name)
        latest = selectors.dataset_latest_source(dataset=dataset)
        context = {"latest": latest, "viewer": signed_in_user(request)}
        return Response(self.OutputSerializer(dataset, context=context).data)


def _column_roles(version: DatasetVersion | None) -> dict[str, str]:
    if version is None:
        return {}
    roles = {name: "identifier" for name in version.dropped_columns}
    roles.update({column["name"]: column["role"] for column in version.schema["columns"]})
    return roles


class DatasetVersionListApi(APIView):
    @extend_schema(
        operation_id="dataset_version_list",
        parameters=PAGE_PARAMETERS,
        responses={200: paginated(VersionOutputSerializer, "PaginatedDatasetVersionList"), **READ_ERRORS},
    )
    def get(self, request: Request, name: str) -> Response:
        """A dataset's versions, oldest first."""
        dataset = selectors.dataset_get(user=signed_in_user(request), name=name)
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.dataset_version_list(dataset=dataset),
            serializer_class=VersionOutputSerializer,
            context={"viewer": signed_in_user(request)},
        )


class DatasetVersionCreateApi(APIView):
    """A new source version of an existing dataset; its caps stay as registered."""

    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(allow_empty_file=True, help_text="CSV or Parquet, optionally gz/bz2/xz/zip")
        schema = SchemaField(required=False, help_text="omit to infer one (every role 'other')")

        class Meta:
            ref_name = "DatasetVersionCreateInput"

    @extend_schema(
        operation_id="dataset_version_create",
        request={"multipart/form-data": InputSerializer},
        responses={
            201: RegistrationOutputSerializer,
            200: RegistrationOutputSerializer,
            **WRITE_ERRORS,
            **error_responses(413),
        },
    )
    def post(self, request: Request, name: str) -> Response:
        """Add a source version to an existing dataset (steward); its caps stay as registered."""
        dataset = selectors.dataset_get(user=signed_in_user(request), name=name)
        serializer = DatasetVersionCreateApi.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return _registered(
            request=request,
            upload=serializer.validated_data["file"],
            name=dataset.name,
            epsilon_cap=dataset.epsilon_cap,
            delta_cap=dataset.delta_cap,
            schema=serializer.validated_data.get("schema"),
        )


class DatasetVersionCollectionApi(DatasetVersionListApi, DatasetVersionCreateApi):
    """``/datasets/{name}/versions/``: GET lists, POST adds a source version."""

    parser_classes = DatasetVersionCreateApi.parser_classes


class DatasetVersionDetailApi(APIView):
    @extend_schema(operation_id="dataset_version_get", responses={200: VersionOutputSerializer, **READ_ERRORS})
    def get(self, request: Request, name: str, number: int) -> Response:
        """One version by number, with its schema."""
        dataset = selectors.dataset_get(user=signed_in_user(request), name=name)
        version = selectors.dataset_version_list(dataset=dataset).filter(number=number).first()
        if version is None:
            raise NotFoundError(f"Dataset {name!r} has no version {number}.")
        return Response(VersionOutputSerializer(version, context={"viewer": signed_in_user(request)}).data)


class DatasetDeclareApi(APIView):
    class InputSerializer(serializers.Serializer):
        columns = serializers.DictField(
            child=ColumnDeclarationSerializer(),
            allow_empty=False,
            required=False,
            help_text="column name → what to declare on it, e.g. "
            '{"income": {"role": "label", "categories": ["<=50K", ">50K"]}, "age": {"min": 15, "max": 100}}',
        )
        accept_proposed_types = serializers.BooleanField(
            required=False,
            default=False,
            help_text="true: declare every type proposed from the rows as proposed (one logged declaration per "
            "column), alone or before the columns' declarations",
        )

        repropose_types = serializers.ListField(
            child=serializers.CharField(),
            required=False,
            allow_empty=True,
            help_text="alone: mark these columns' declared types as proposed again ([] for every column), logged "
            "per column; for a version registered before type proposals existed, whose types read from the rows "
            "count as declared. The dataset cannot be requested until they are declared again",
        )

        class Meta:
            ref_name = "DatasetDeclareInput"

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if "repropose_types" in attrs:
                if attrs.get("columns") or attrs.get("accept_proposed_types"):
                    raise serializers.ValidationError(
                        {"repropose_types": 'This field goes alone, without "columns" or "accept_proposed_types".'}
                    )
                return attrs
            if not attrs.get("columns") and not attrs.get("accept_proposed_types"):
                raise serializers.ValidationError(
                    {"columns": 'This field is required unless "accept_proposed_types" is true.'}
                )
            return attrs

    class OutputSerializer(serializers.Serializer):
        version = VersionOutputSerializer()
        columns = serializers.ListField(child=serializers.JSONField(), help_text="the declared columns, as now stored")
        warnings = serializers.ListField(
            child=serializers.CharField(), help_text="declared domains that look read from the data (logged)"
        )

        class Meta:
            ref_name = "DatasetDeclaration"

    @extend_schema(
        operation_id="dataset_declare",
        request=InputSerializer,
        responses={200: OutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, name: str) -> Response:
        """Declare columns' types, roles and public domains on the newest source version (steward); logged.

        ``accept_proposed_types`` declares every type proposed from the rows as proposed (the one step
        that makes an upload registered without a schema requestable); a column's own ``type`` wins.
        ``repropose_types`` (alone) marks declared types as proposed again, the way back for a version
        registered before type proposals existed.

        All columns or none: 400 names the column and the reason (an unknown column, a category list that
        misses a value present, a minimum above the maximum, an identifier on a stored column); 409 while a
        request on the version is approved or generating. Every declared column is one
        ``dataset_version.declare`` audit event. Nothing becomes public unless it is named here.
        """
        dataset = selectors.dataset_get(user=signed_in_user(request), name=name)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if "repropose_types" in serializer.validated_data:
            result = services.dataset_schema_types_repropose(
                actor=signed_in_user(request),
                name=dataset.name,
                columns=serializer.validated_data["repropose_types"] or None,
            )
            proposed = proposed_type_columns(result.version.schema)
            columns = [column for column in result.version.schema["columns"] if column["name"] in proposed]
            answer = {"version": result.version, "columns": columns, "warnings": []}
            return Response(self.OutputSerializer(answer, context={"viewer": signed_in_user(request)}).data)
        declarations = dict(serializer.validated_data.get("columns") or {})
        accept = serializer.validated_data["accept_proposed_types"]
        latest = selectors.dataset_latest_source(dataset=dataset)
        named = set(declarations) | set(proposed_type_columns(latest.schema) if accept and latest else [])
        result = services.dataset_schema_declare_columns(
            actor=signed_in_user(request), name=dataset.name, declarations=declarations, accept_proposed_types=accept
        )
        declared = [column for column in result.version.schema["columns"] if column["name"] in named]
        answer = {"version": result.version, "columns": declared, "warnings": result.warnings}
        return Response(self.OutputSerializer(answer, context={"viewer": signed_in_user(request)}).data)


class BudgetAmountsSerializer(serializers.Serializer):
    cap = ExactDecimalField(max_digits=None, decimal_places=None)
    spent = ExactDecimalField(max_digits=None, decimal_places=None)
    reserved = ExactDecimalField(max_digits=None, decimal_places=None)
    remaining = ExactDecimalField(max_digits=None, decimal_places=None)

    class Meta:
        ref_name = "BudgetAmounts"


class BudgetEntryOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField(help_text="reserve, spend, release or estimate (a source version's DP row count)")
    epsilon = epsilon_field()
    delta = delta_field()
    request = serializers.IntegerField(source="request_id", allow_null=True, help_text="null for a row estimate")
    version = serializers.IntegerField(
        source="version.number", allow_null=True, default=None, help_text="the version a row estimate paid for"
    )
    job = serializers.IntegerField(source="job_id", allow_null=True)
    mechanism = serializers.CharField()
    accountant = serializers.JSONField()
    actor = serializers.CharField(source="actor.username", allow_null=True, default=None)
    note = serializers.CharField()
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "BudgetEntry"


class DatasetBudgetApi(APIView):
    class OutputSerializer(serializers.Serializer):
        dataset = serializers.CharField(source="dataset.name")
        epsilon = BudgetAmountsSerializer()
        delta = BudgetAmountsSerializer()
        entries = BudgetEntryOutputSerializer(many=True, help_text="every ledger row, oldest first")

        class Meta:
            ref_name = "DatasetBudget"

    @extend_schema(operation_id="dataset_budget_get", responses={200: OutputSerializer, **READ_ERRORS})
    def get(self, request: Request, name: str) -> Response:
        """Caps, spent, reserved and remaining ε and δ as exact decimal strings, and every ledger entry."""
        dataset = selectors.dataset_get(user=signed_in_user(request), name=name)
        entries = selectors.budget_entry_list(user=signed_in_user(request), dataset=dataset)
        balance = selectors.budget_balance(dataset=dataset)
        return Response(
            self.OutputSerializer(
                {
                    "dataset": dataset,
                    "entries": entries,
                    "epsilon": balance.amounts("epsilon"),
                    "delta": balance.amounts("delta"),
                }
            ).data
        )
