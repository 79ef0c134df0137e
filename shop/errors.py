"""Domain errors. Services raise these; `shop.api_errors.exception_handler` turns them into responses.

The domain never imports the API layer, so these carry everything a response needs: a status,
a machine-readable code, a human message and, for bad input, DRF-style field messages.
"""

from typing import Any


class DomainError(Exception):
    status = 400
    code = "invalid"
    # Seconds after which the same request may succeed (a 503 of a paused dependency): the
    # response's Retry-After header. None: no header.
    retry_after_s: int | None = None

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def as_payload(self) -> dict[str, Any]:
        return {"detail": self.message, "code": self.code, **self.details}


class InvalidInput(DomainError):
    """The request is well-formed but its values are wrong. Carries field messages."""

    status = 400

    def __init__(self, field_errors: dict[str, Any], message: str = "Invalid input.") -> None:
        super().__init__(message, code="invalid")
        self.field_errors = field_errors

    def as_payload(self) -> dict[str, Any]:
        return self.field_errors


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    """The request is valid but the current state forbids it (stock, status, duplicates)."""

    status = 409
    code = "conflict"


class IdempotencyKeyReused(DomainError):
    status = 422
    code = "idempotency_key_reused"
