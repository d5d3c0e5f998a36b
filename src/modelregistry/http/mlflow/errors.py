"""MLflow's error shape, `{"error_code": "...", "message": "..."}`, with the statuses the MLflow
client relies on.

The client retries 408, 429, 500, 502, 503 and 504 on GET, PATCH and DELETE, seven times with
backoff, so an error a caller can fix (a bad value, a stage that is taken, a policy not met)
is never a 5xx here, although MLflow's own server answers INVALID_STATE with 500.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from modelregistry.domain import errors as de
from modelregistry.domain.error_reason import ErrorReason
from modelregistry.http.errors import HttpError

# The reason of the NotFound raised for MLflow endpoints this registry does not serve.
ENDPOINT_NOT_FOUND = ErrorReason.ENDPOINT_NOT_FOUND

_CODES: list[tuple[type[de.RegistryError], str, int]] = [
    (de.InvalidArgument, "INVALID_PARAMETER_VALUE", 400),
    (de.OutOfRange, "INVALID_PARAMETER_VALUE", 400),
    (de.NotFound, "RESOURCE_DOES_NOT_EXIST", 404),
    (de.AlreadyExists, "RESOURCE_ALREADY_EXISTS", 400),
    (de.FailedPrecondition, "INVALID_STATE", 400),
    (de.Aborted, "ABORTED", 409),
    (de.PermissionDenied, "PERMISSION_DENIED", 403),
    (de.Unauthenticated, "UNAUTHENTICATED", 401),
    (de.ResourceExhausted, "RESOURCE_EXHAUSTED", 429),
    (de.Unavailable, "TEMPORARILY_UNAVAILABLE", 503),
    (de.DataLoss, "DATA_LOSS", 500),
]
_ROUTING = {404: ENDPOINT_NOT_FOUND, 405: ENDPOINT_NOT_FOUND}


def mlflow_code(error: HttpError) -> tuple[str, int]:
    cause = error.cause
    if cause is None:
        return _ROUTING.get(error.status, "INTERNAL_ERROR"), error.status
    if cause.reason == ENDPOINT_NOT_FOUND:
        return ENDPOINT_NOT_FOUND, 404
    for cls, code, status in _CODES:
        if isinstance(cause, cls):
            return code, status
    return "INTERNAL_ERROR", 500


def render_error(request: Request, error: HttpError) -> Response:
    code, status = mlflow_code(error)
    message = error.message
    if error.cause is not None and error.cause.reason == "PRODUCTION_OCCUPIED":
        # The domain names its own flag; MLflow callers know this one.
        message = message.replace("archive_existing", "archive_existing_versions=true")
    elif code == ENDPOINT_NOT_FOUND and error.cause is None:
        message = f"{request.method} {request.url.path} is not an endpoint of this registry"
    headers = dict(error.headers)
    if status == 401:
        headers["www-authenticate"] = 'Bearer realm="modelregistry", Basic realm="modelregistry"'
    body = {"error_code": code, "message": message}
    return JSONResponse(body, status_code=status, headers=headers)
