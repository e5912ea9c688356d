"""Annotation's domain errors. Each carries its HTTP meaning (arena.errors.DuetError), so
the API's exception handler and the pages turn it into a 4xx that names the problem."""

from django.core.exceptions import PermissionDenied

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


class PageRefused(PermissionDenied):
    """A page refused, for the 403 page (config.error_pages) to explain: the message says
    why, `advice` what to do, and `offer` is a (url, label) button that POSTs there."""

    def __init__(self, message: str, advice: str = "", offer: tuple[str, str] | None = None):
        super().__init__(message)
        self.advice = advice
        self.offer = offer
