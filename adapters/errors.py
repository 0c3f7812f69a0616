"""Adapter errors carry the HTTP status and the request field they concern."""

from __future__ import annotations


class AdapterError(Exception):
    """An adapter request the caller can fix; `message` says how."""

    status_code = 400
    code = "invalid_adapter"

    def __init__(self, message: str, param: str | None = "lora_path") -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class AdapterNotFound(AdapterError):
    status_code = 404
    code = "adapter_not_found"


class AdapterConflict(AdapterError):
    status_code = 409
    code = "adapter_conflict"


class AdapterReserved(AdapterError):
    """The name is one the server's own components score with (a reward model, the difficulty
    estimator): a client replacing it would change every request's scores."""

    status_code = 409
    code = "adapter_reserved"


class AdapterTimeout(AdapterError):
    """The engine did not finish loading or unloading an adapter in time (a slow or hung
    replica): the requests that waited for it get 504; the registry counts it as not loaded."""

    status_code = 504
    code = "adapter_timeout"
