"""OpenAPI: every operation documents the error answers it can give, with the one error body."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema

from .serializers import ErrorBodySerializer

ERRORS = {
    "400": "Invalid input (``fields`` names each problem).",
    "401": "Missing, malformed, unknown, revoked or expired API key, or its creator lost access.",
    "403": "The key (its creator's role, capped by its scopes) may not do this here.",
    "404": "No such object within the key's reach (another tenant's ids too).",
    "429": "Rate limit of the key exceeded (code rate_limit_exceeded; see Retry-After).",
}
WRITE_ERRORS = {"409": "Conflict with the current state.", "412": "If-Match did not match (the object changed).",
                "422": "The Idempotency-Key was used with another request."}


class ApiAutoSchema(AutoSchema):
    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation.setdefault("responses", {})
        errors = dict(ERRORS)
        if self.method in ("POST", "PATCH", "PUT", "DELETE"):
            errors.update(WRITE_ERRORS)
        for code, description in errors.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorBodySerializer, code)
                responses[code]["description"] = description
        if self.method == "GET":
            responses.setdefault("304", {"description": "Not modified: If-None-Match matched the ETag."})
        return operation

    def get_tags(self):
        parts = [p for p in self.path.split("/") if p and not p.startswith("{")]
        return [parts[3] if len(parts) > 3 else "accounts"]


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "developers.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-API-Key",
                "description": "An account-scoped key, sk-<8-character id>.<secret> (Account → API keys)."}
