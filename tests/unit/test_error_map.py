from roost import errors
from roost.api.errors import ERROR_SCHEMAS, STATUS_BY_ERROR, body_for, responses, status_for
from tests.support.openapi import spec


def _all_subclasses(cls: type) -> list[type]:
    out: list[type] = []
    subclasses: list[type] = cls.__subclasses__()
    for sub in subclasses:
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


def test_every_roost_error_has_an_explicit_status() -> None:
    for cls in _all_subclasses(errors.RoostError):
        assert any(c in STATUS_BY_ERROR and c is not errors.RoostError for c in cls.__mro__), cls


def test_statuses_and_bodies_follow_opencode() -> None:
    nf = errors.SessionNotFound("ses_x")
    assert status_for(nf) == 404
    assert body_for(nf) == {
        "name": "NotFoundError",
        "data": {"message": "Session not found: ses_x"},
    }
    busy = errors.SessionBusy("ses_x")
    assert status_for(busy) == 409
    assert body_for(busy) == {
        "_tag": "SessionBusyError",
        "sessionID": "ses_x",
        "message": "Session is busy: ses_x",
    }
    bad = errors.UnknownAgent("nope", ["build"])
    assert status_for(bad) == 400
    assert body_for(bad)["name"] == "BadRequest"
    assert body_for(bad)["data"]["kind"] == "Payload"


def test_storage_unavailable_is_a_503_naming_the_cause_in_opencodes_error_shape() -> None:
    full = errors.StorageUnavailable(errors.DISK_FULL, "SQLITE_FULL", "/data/roost.db")
    assert status_for(full) == 503
    assert body_for(full) == {
        "name": "ServiceUnavailableError",
        "data": {
            "message": "storage unavailable: the disk holding the database is full "
            "(SQLITE_FULL, /data/roost.db)",
            "service": "storage",
            "cause": "disk_full",
        },
    }
    read_only = errors.StorageUnavailable(errors.READ_ONLY, "SQLITE_READONLY", "/data/roost.db")
    assert "read-only" in body_for(read_only)["data"]["message"]


def test_refused_bodies_are_bad_requests_and_oversized_ones_413() -> None:
    malformed = errors.MalformedBody("no low surrogate in string", at="byte 9")
    assert status_for(malformed) == 400
    assert body_for(malformed)["data"]["kind"] == "Payload"
    assert "byte 9" in body_for(malformed)["data"]["message"]
    too_large = errors.BodyTooLarge(32 * 2**20)
    assert status_for(too_large) == 413
    assert body_for(too_large) == {
        "name": "BadRequest",
        "data": {
            "message": "Request body is larger than the limit of 33554432 bytes (32 MiB)",
            "kind": "Payload",
        },
    }


def test_declared_responses_name_opencodes_error_schemas() -> None:
    declared = responses(errors.InvalidInput, errors.SessionNotFound, errors.PartInUse)
    schemas = {
        status: entry["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        for status, entry in declared.items()
    }
    assert schemas == {400: "BadRequestError", 404: "NotFoundError", 409: "SessionBusyError"}
    for name, schema in ERROR_SCHEMAS.items():
        assert schema == spec()["components"]["schemas"][name], name
