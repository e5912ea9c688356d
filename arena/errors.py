"""Domain errors that carry their HTTP meaning (as Django's SessionInterrupted does).

Actions raise them; the API's exception handler and the views turn them into a 4xx whose
body names the problem: {"error": code, "detail": message}.
"""


class DuetError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(DuetError):
    code = "invalid"


class InvalidVoteToken(DuetError):
    code = "invalid_token"


class ExpiredVoteToken(DuetError):
    code = "expired_token"


class ForeignVoteToken(DuetError):
    status_code = 403
    code = "foreign_token"


class NotFound(DuetError):
    status_code = 404
    code = "not_found"


class AudioGateNotMet(DuetError):
    code = "audio_not_played"


class NothingToCompare(DuetError):
    status_code = 404
    code = "nothing_to_compare"


class NotLoggedIn(DuetError):
    status_code = 401
    code = "not_authenticated"


class NotAllowed(DuetError):
    status_code = 403
    code = "permission_denied"


class RateLimited(DuetError):
    status_code = 429
    code = "rate_limited"
