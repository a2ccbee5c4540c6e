"""REST API for audits: list and read runs, audit on demand or external data, fetch and verify
signed datasheets, and accept the risk of a failed audit."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import django_filters
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.http import FileResponse
from django.urls import get_script_prefix
from django.utils.text import get_valid_filename
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audits import selectors, services
from audits.models import AuditRun, AuditStatus, Datasheet
from audits.recipient import reads_real_diagnostics, recipient_run_data
from core.apis import (
    READ_ERRORS,
    WRITE_ERRORS,
    FileAnswerApi,
    error_responses,
    filtered,
    list_parameters,
    paginated,
    paginated_response,
)
from core.auth import signed_in_user
from core.errors import NotFoundError, PermissionDeniedError
from core.limits import read_capped, upload_limit_install
from governance.services import audit_event_record
from governance.storage import StoredFile, version_storage


class AuditRunFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=AuditStatus.choices, label="passed, failed, inconclusive, ...")
    version = django_filters.NumberFilter(field_name="version_id", label="id of the audited version")
    request = django_filters.NumberFilter(field_name="request_id", label="id of the data request")

    class Meta:
        model = AuditRun
        fields = ["status", "version", "request"]


class AuditRunOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField(help_text="generation, on_demand or external")
    status = serializers.CharField(help_text="running, passed, failed, inconclusive or error")
    blocked = serializers.BooleanField(help_text="a blocking (privacy) check failed")
    failed_checks = serializers.ListField(child=serializers.CharField())
    dataset = serializers.CharField(source="version.dataset.name")
    version = serializers.IntegerField(source="version_id", help_text="id of the audited version")
    version_number = serializers.IntegerField(source="version.number")
    version_hash = serializers.CharField(source="version.content_hash")
    request = serializers.IntegerField(source="request_id", allow_null=True)
    seed = serializers.IntegerField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "AuditRun"


class CheckOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    category = serializers.CharField(help_text="fidelity, utility, reidentification, membership or bias")
    value = serializers.FloatField(allow_null=True)
    threshold = serializers.FloatField(allow_null=True)
    direction = serializers.CharField(help_text="higher_is_better or lower_is_better")
    verdict = serializers.CharField(help_text="pass, fail, BLOCK, skipped or info")
    passed = serializers.BooleanField(allow_null=True)
    blocking = serializers.BooleanField(help_text="a failure blocks the release")
    gating = serializers.BooleanField(help_text="false: reported for information only")
    baseline = serializers.FloatField(allow_null=True, help_text="random-guess or holdout baseline")
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    skipped_reason = serializers.CharField()
    seconds = serializers.FloatField()
    details = serializers.JSONField()
    chart = serializers.JSONField(help_text="plain series or a labelled matrix, for drawing")

    class Meta:
        ref_name = "AuditCheck"


class ControlOutputSerializer(serializers.Serializer):
    family = serializers.CharField(help_text="reidentification or membership")
    share = serializers.FloatField(help_text="share of synthetic rows replaced by verbatim training rows")
    n_planted = serializers.IntegerField()
    caught = serializers.BooleanField()
    caught_by = serializers.ListField(child=serializers.CharField())
    explanation = serializers.CharField(
        required=False, default="", help_text="when not caught: why, in plain words, and what to change"
    )
    checks = serializers.JSONField(help_text="the family's checks rerun on the planted copy")

    class Meta:
        ref_name = "AuditPositiveControl"


class DatasheetOutputSerializer(serializers.Serializer):
    sha256 = serializers.CharField()
    signer = serializers.CharField()
    signed_at = serializers.DateTimeField()
    size_bytes = serializers.IntegerField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        ref_name = "AuditDatasheet"

    def get_download_url(self, sheet: Datasheet) -> str:
        return datasheet_download_path(sheet.run_id)


def datasheet_download_path(run_id: int) -> str:
    """The path of ``audit-datasheet`` for a run, as ``reverse`` gives it, without loading the URLconf.

    ``reverse`` imports every view module (pandas, SciPy, the generators: seconds), which
    ``synthgate audit show --json`` of a stored run must not pay; tests/audits/test_audit_show_json.py
    holds this path equal to ``reverse``'s.
    """
    return f"{get_script_prefix()}api/audits/{int(run_id)}/datasheet/"


class AuditRunDetailOutputSerializer(AuditRunOutputSerializer):
    train_version = serializers.IntegerField(source="train_version_id")
    holdout_version = serializers.IntegerField(source="holdout_version_id")
    thresholds = serializers.JSONField()
    timings = serializers.JSONField(help_text="seconds per step")
    requested_by = serializers.CharField(source="requested_by.username", allow_null=True, default=None)
    checks = CheckOutputSerializer(many=True, source="checks.all")
    controls = ControlOutputSerializer(many=True, help_text="positive controls: planted leaks the checks must catch")
    controls_caught = serializers.SerializerMethodField()
    datasheet = serializers.SerializerMethodField()

    class Meta:
        ref_name = "AuditRunDetail"

    def get_controls_caught(self, run: AuditRun) -> bool:
        return bool(run.controls) and all(control["caught"] for control in run.controls)

    @extend_schema_field(DatasheetOutputSerializer(allow_null=True))
    def get_datasheet(self, run: AuditRun) -> dict[str, Any] | None:
        sheet = Datasheet.objects.filter(run=run).first()
        return None if sheet is None else DatasheetOutputSerializer(sheet).data


def _detail(run: AuditRun, user: User, status_code: int = status.HTTP_200_OK) -> Response:
    """The run as ``user`` may read it: exact diagnostics for staff roles, the recipient view otherwise."""
    data: dict[str, Any] = dict(AuditRunDetailOutputSerializer(run).data)
    if not reads_real_diagnostics(user):
        data = recipient_run_data(data, run)
    return Response(data, status=status_code)


class AuditRunListApi(APIView):
    @extend_schema(
        operation_id="audit_run_list",
        parameters=list_parameters(AuditRunFilter),
        responses={200: paginated(AuditRunOutputSerializer, "PaginatedAuditRunList"), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        """Audit runs, newest first: those of the requests the user may see, and (stewards, approvers,
        auditors) external ones."""
        queryset = filtered(AuditRunFilter, request, selectors.audit_run_list(user=signed_in_user(request)))
        return paginated_response(
            request=request, view=self, queryset=queryset, serializer_class=AuditRunOutputSerializer
        )


class AuditRunDetailApi(APIView):
    @extend_schema(operation_id="audit_run_get", responses={200: AuditRunDetailOutputSerializer, **READ_ERRORS})
    def get(self, request: Request, run_id: int) -> Response:
        """One run with every check, the positive controls and the signed datasheet; 404 when not visible."""
        user = signed_in_user(request)
        return _detail(selectors.audit_run_get(user=user, run_id=run_id), user)


class AuditRunOnDemandApi(APIView):
    class InputSerializer(serializers.Serializer):
        seed = serializers.IntegerField(
            required=False,
            allow_null=True,
            default=None,
            min_value=0,
            max_value=2**63 - 1,
            help_text="omit for a fresh random seed",
        )

        class Meta:
            ref_name = "AuditRunOnDemandInput"

    @extend_schema(
        operation_id="audit_run_on_demand",
        request=InputSerializer,
        responses={201: AuditRunDetailOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, version_id: int) -> Response:
        """Audit a synthetic or external version again (with the purpose's current thresholds)."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = services.audit_run_on_demand(
            actor=signed_in_user(request), version_id=version_id, seed=serializer.validated_data["seed"]
        )
        return _detail(run, signed_in_user(request), status.HTTP_201_CREATED)


@contextlib.contextmanager
def uploads_saved(**uploads: UploadedFile) -> Iterator[dict[str, Path]]:
    """Each upload copied into one private temporary folder under its own (sanitised) name, so the
    reader sees its extension; the folder is deleted afterwards whatever happens."""
    with tempfile.TemporaryDirectory(prefix="synthgate-audit-") as folder:
        paths = {}
        for index, (key, upload) in enumerate(uploads.items()):
            name = get_valid_filename(Path(upload.name or key).name) or key
            path = Path(folder) / str(index) / name
            path.parent.mkdir()
            with path.open("wb") as stream:
                for chunk in upload.chunks():
                    stream.write(chunk)
            paths[key] = path
        yield paths


class AuditExternalApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        dataset = serializers.SlugField(max_length=100, help_text="its newest source version is the training data")
        synthetic = serializers.FileField(help_text="the synthetic table made elsewhere (CSV or Parquet)")
        holdout = serializers.FileField(help_text="real rows the generator never saw (CSV or Parquet)")
        seed = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=0, max_value=2**63 - 1)

        class Meta:
            ref_name = "AuditExternalInput"

    @extend_schema(
        operation_id="audit_external",
        request={"multipart/form-data": InputSerializer},
        responses={201: AuditRunDetailOutputSerializer, **WRITE_ERRORS, **error_responses(413)},
    )
    def post(self, request: Request) -> Response:
        """Audit synthetic data made outside Synthgate (stewards and auditors); uploads are deleted afterwards."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
        with uploads_saved(synthetic=fields["synthetic"], holdout=fields["holdout"]) as paths:
            run = services.audit_external(
                actor=signed_in_user(request),
                dataset_name=fields["dataset"],
                synthetic_path=paths["synthetic"],
                holdout_path=paths["holdout"],
                seed=fields["seed"],
            )
        return _detail(run, signed_in_user(request), status.HTTP_201_CREATED)


def datasheet_file(sheet: Datasheet) -> StoredFile:
    """The run's signed report in the artefact storage (``governance.storage``)."""
    return StoredFile(version_storage(), sheet.storage_key)


class AuditDatasheetApi(FileAnswerApi):
    @extend_schema(
        operation_id="audit_datasheet_get", responses={(200, "application/pdf"): OpenApiTypes.BINARY, **READ_ERRORS}
    )
    def get(self, request: Request, run_id: int) -> FileResponse:
        """The run's signed internal audit report (exact real-data diagnostics): stewards, approvers, auditors."""
        user = signed_in_user(request)
        run = selectors.audit_run_get(user=user, run_id=run_id)
        if not reads_real_diagnostics(user):
            raise PermissionDeniedError(
                "The internal audit report holds exact statistics of the real rows; requesters and recipients "
                "read the release datasheet (download it from the release)."
            )
        sheet = Datasheet.objects.filter(run=run).first()
        if sheet is None:
            raise NotFoundError(f"Audit run #{run.pk} has no signed datasheet.")
        audit_event_record(actor=user, action="audit.report_download", obj=sheet, after={"run": run.pk})
        return FileResponse(
            datasheet_file(sheet).open("rb"),
            content_type="application/pdf",
            as_attachment=True,
            filename=f"datasheet-audit-{run.pk}.pdf",
        )


class DatasheetVerifyApi(APIView):
    # Anyone holding a datasheet may check it: verification reveals nothing the file does not carry.
    permission_classes = [AllowAny]
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(allow_empty_file=True, help_text="the signed PDF datasheet")
        release = serializers.IntegerField(
            required=False, min_value=1, help_text="fail unless this is the datasheet issued for this release"
        )

        class Meta:
            ref_name = "DatasheetVerifyInput"

    class OutputSerializer(serializers.Serializer):
        ok = serializers.BooleanField(help_text="every check below passed")
        intact = serializers.BooleanField(help_text="the signed bytes are unchanged")
        valid = serializers.BooleanField(help_text="the signature is cryptographically valid")
        trusted = serializers.BooleanField(help_text="the signer chains to a trusted certificate")
        covers_entire_file = serializers.BooleanField(help_text="nothing was appended after signing")
        signer = serializers.CharField(allow_null=True)
        signing_time = serializers.DateTimeField(allow_null=True)
        sha256 = serializers.CharField()
        sha256_matches_record = serializers.BooleanField(help_text="a datasheet with this SHA-256 was signed here")
        version_hash = serializers.CharField(allow_null=True, help_text="SHA-256 of the version it describes")
        release = serializers.IntegerField(allow_null=True, help_text="the release named in the signed metadata")
        datasheet = serializers.IntegerField(allow_null=True, help_text="the internal audit report's id, if it is one")
        release_datasheet = serializers.IntegerField(
            allow_null=True, help_text="the release datasheet's id, if it is one"
        )
        problems = serializers.ListField(child=serializers.CharField(), help_text="why ok is false")
        notes = serializers.ListField(child=serializers.CharField(), help_text="limits of the check")

        class Meta:
            ref_name = "DatasheetVerification"

    @extend_schema(
        operation_id="datasheet_verify",
        request={"multipart/form-data": InputSerializer},
        responses={200: OutputSerializer, **error_responses(400, 413)},
    )
    def post(self, request: Request) -> Response:
        """Verify a datasheet's signature and SHA-256 record; a failed check is 200 with ok false (any caller)."""
        limit = settings.SYNTHGATE_MAX_VERIFY_BYTES
        upload_limit_install(request._request, limit_bytes=limit, what="The uploaded datasheet")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        pdf_bytes = read_capped(upload, limit_bytes=limit, what="The uploaded datasheet")
        report = services.datasheet_verify(pdf_bytes=pdf_bytes, release_id=serializer.validated_data.get("release"))
        return Response(self.OutputSerializer(report).data)


class RiskAcceptApi(APIView):
    class InputSerializer(serializers.Serializer):
        reasons = serializers.DictField(
            child=serializers.CharField(allow_blank=True),
            allow_empty=False,
            help_text="{failed check: why its failure is acceptable for this purpose}, naming every failed check",
        )

        class Meta:
            ref_name = "RiskAcceptInput"

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        request = serializers.IntegerField(source="request_id")
        audit_run = serializers.IntegerField(source="run_id")
        approver = serializers.CharField(source="approver.username")
        reason = serializers.CharField(help_text="the per-check reasons, joined")
        failed_checks = serializers.ListField(child=serializers.CharField())
        reasons = serializers.DictField(child=serializers.CharField(), help_text="{accepted check: its reason}")
        request_state = serializers.CharField(source="request.state")
        created_at = serializers.DateTimeField()

        class Meta:
            ref_name = "RiskAcceptance"

    @extend_schema(
        operation_id="audit_risk_accept", request=InputSerializer, responses={201: OutputSerializer, **WRITE_ERRORS}
    )
    def post(self, request: Request, request_id: int) -> Response:
        """Accept a blocked request's failed checks, each by name with its own reason.

        Made by an approver who neither filed the request nor was its only approver.

        An inconclusive audit (a positive control not caught) cannot be accepted.
        """
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        acceptance = services.risk_accept(
            actor=signed_in_user(request), request_id=request_id, reasons=serializer.validated_data["reasons"]
        )
        return Response(self.OutputSerializer(acceptance).data, status=status.HTTP_201_CREATED)
