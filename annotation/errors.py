"""Annotation's domain errors. Each carries its HTTP meaning (arena.errors.DuetError), so
the API's exception handler and the pages turn it into a 4xx that names the problem."""

from arena.errors import DuetError, InvalidInput, NotAllowed, NotFound  # noqa: F401 - re-exported


class ImportFailed(InvalidInput):
    """A bad row (or media file) stopped an import; nothing was written. The message names
    the line and the field: "line 7: field 'a.text' is missing"."""

    code = "import_failed"


class NothingToAnnotate(DuetError):
    status_code = 404
    code = "nothing_to_annotate"


class QualityBlocked(DuetError):
    status_code = 403
    code = "quality_blocked"


class TooFast(DuetError):
    code = "too_fast"


class LeaseExpired(DuetError):
    status_code = 409
    code = "lease_expired"


class AlreadyDone(DuetError):
    status_code = 409
    code = "already_done"
