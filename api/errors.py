"""One error body for every refusal: ``{"error": {"code", "message", "fields"}}``."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "invalid_api_key",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.ParseError: "malformed_request",
    exceptions.Throttled: "rate_limit_exceeded",
    exceptions.ValidationError: "invalid",
}


class ApiError(exceptions.APIException):
    """A refusal with its own code: ``ApiError(409, "conflict", "…")``."""

    def __init__(self, status_code: int, code: str, message: str, fields: dict | None = None):
        super().__init__(message, code)
        self.status_code, self.error_code, self.fields = status_code, code, fields or {}


def _django_validation(exc: DjangoValidationError) -> exceptions.ValidationError:
    if hasattr(exc, "error_dict"):
        return exceptions.ValidationError({k if k != "__all__" else "non_field_errors": v
                                           for k, v in exc.message_dict.items()})
    return exceptions.ValidationError({"non_field_errors": exc.messages})


def _flatten(detail) -> list[str]:
    if isinstance(detail, dict):
        return [m for v in detail.values() for m in _flatten(v)]
    if isinstance(detail, list):
        return [m for v in detail for m in _flatten(v)]
    return [str(detail)]


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or "You do not have permission to do this.")
    elif isinstance(exc, DjangoValidationError):
        exc = _django_validation(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    fields = {}
    if isinstance(exc, ApiError):
        code, message, fields = exc.error_code, str(exc.detail), exc.fields
    elif isinstance(exc, exceptions.ValidationError):
        code = "invalid"
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        general = detail.pop("non_field_errors", None) if isinstance(detail, dict) else None
        fields = {k: _flatten(v) for k, v in detail.items()}
        message = " ".join(_flatten(general)) if general else "Some fields are not valid."
    else:
        code = next((c for cls, c in CODES.items() if isinstance(exc, cls)), "error")
        message = " ".join(_flatten(getattr(exc, "detail", str(exc))))
        if isinstance(exc, exceptions.Throttled):
            message = "Too many requests for this API key: slow down and retry after the Retry-After seconds."
    response.data = {"error": {"code": code, "message": message, "fields": fields}}
    if response.status_code == status.HTTP_403_FORBIDDEN and code == "error":
        response.data["error"]["code"] = "permission_denied"
    return response
