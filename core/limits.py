"""Bounds on free input: text fields and JSON request bodies.

Every limit is a setting (``SYNTHGATE_MAX_*``, read from the environment in config/settings) so an
operator can raise it; the error names the field, the size found and the limit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, BinaryIO, cast

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from core.errors import ApplicationError, ValidationError


class PayloadTooLargeError(ApplicationError):
    """The request body (or an uploaded file) is larger than the configured limit."""

    code = "request_too_large"
    status = 413


def text_checked(value: str | None, *, field: str, max_chars: int | None = None) -> str:
    """Return ``value`` ('' for None) if it is at most the text limit; refuse it otherwise."""
    text = value or ""
    limit = max_chars if max_chars is not None else settings.SYNTHGATE_MAX_TEXT_CHARS
    if len(text) > limit:
        raise ValidationError(
            f"{field} is {len(text):,} characters long; the limit is {limit:,}.",
            extra={"field": field, "length": len(text), "limit": limit},
            code="too_long",
        )
    if "\x00" in text:
        raise ValidationError(f"{field} contains a NUL character.", extra={"field": field}, code="invalid_character")
    return text


def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0, ``[]`` is 1), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
            deepest = max(deepest, depth + 1)
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
            deepest = max(deepest, depth + 1)
    return deepest


class LimitedJSONParser(JSONParser):
    """DRF's JSON parser with a byte limit read before parsing and a nesting-depth limit.

    Django's DATA_UPLOAD_MAX_MEMORY_SIZE only guards ``request.body``; DRF reads the stream
    itself, so without this a body of any size is read and parsed.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        limit = settings.SYNTHGATE_MAX_JSON_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise _too_large("The JSON body", limit)
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json_loads_checked(raw.decode(encoding), what="The JSON body")
        except (ValueError, UnicodeDecodeError) as error:
            raise ParseError(f"JSON parse error - {error}") from error


def json_loads_checked(text: str | bytes, *, what: str) -> Any:
    """``json.loads`` that refuses NaN/Infinity and nesting deeper than SYNTHGATE_MAX_JSON_DEPTH.

    Syntax errors propagate as ``ValueError`` for the caller to word; depth is an ApplicationError.
    """
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as error:
        raise _too_deep(what) from error
    if json_depth(data) > settings.SYNTHGATE_MAX_JSON_DEPTH:
        raise _too_deep(what)
    return data


def _too_deep(what: str) -> ValidationError:
    limit = settings.SYNTHGATE_MAX_JSON_DEPTH
    return ValidationError(
        f"{what} is nested more than {limit} levels deep, the limit.",
        extra={"limit_depth": limit},
        code="json_too_deep",
    )


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_capped(stream: BinaryIO, *, limit_bytes: int, what: str) -> bytes:
    """Read a whole stream, refusing it (413) as soon as it passes ``limit_bytes``."""
    data = stream.read(limit_bytes + 1)
    if len(data) > limit_bytes:
        raise _too_large(what, limit_bytes)
    return data


def upload_limit_install(request: HttpRequest, *, limit_bytes: int, what: str) -> None:
    """Refuse a multipart upload larger than ``limit_bytes`` before or while it is received.

    A declared Content-Length over the limit (plus room for the multipart envelope) is refused
    without reading; otherwise the upload handler counts bytes as they arrive and stops there.
    """
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > limit_bytes + MULTIPART_OVERHEAD_BYTES:
        raise _too_large(what, limit_bytes)
    # Before the body is read the handlers are a plain list (Django freezes them once it parses the upload).
    handlers = cast(list[FileUploadHandler], request.upload_handlers)
    handlers.insert(0, SizeLimitUploadHandler(request, limit_bytes=limit_bytes, what=what))


# Boundaries, part headers and small form fields around the one file of a verification upload.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class SizeLimitUploadHandler(FileUploadHandler):
    """First in the chain: counts each file's bytes and stops the upload past the limit."""

    def __init__(self, request: HttpRequest, *, limit_bytes: int, what: str) -> None:
        super().__init__(request)
        self.limit_bytes, self.what, self.received = limit_bytes, what, 0

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit_bytes:
            raise _too_large(self.what, self.limit_bytes)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def _too_large(what: str, limit_bytes: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"{what} is larger than {limit_bytes:,} bytes, the limit.", extra={"limit_bytes": limit_bytes}
    )
