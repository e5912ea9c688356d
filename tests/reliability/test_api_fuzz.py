"""Schemathesis against /api/schema/: generated requests to every operation, in-process
over WSGI with an admin's token (the widest access, so the most code runs), a few
examples each with a fixed seed so CI stays fast and repeatable. No request may cause a
server error, and every refusal (4xx) must say what was wrong."""

import json

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis (see requirements.txt)")

from hypothesis import HealthCheck, Phase, given  # noqa: E402
from hypothesis import settings as hypothesis_settings  # noqa: E402

EXAMPLES_PER_OPERATION = 4


def has_message(response) -> bool:
    """A 4xx body that tells the caller something: Duet's {"error", "detail"}, DRF's
    {"detail"} or per-field errors, or at least a non-empty text body."""
    text = response.text or ""
    try:
        body = json.loads(text)
    except ValueError:
        return bool(text.strip())
    if isinstance(body, dict):
        return bool(body.get("detail") or body.get("error") or any(body.values()))
    return bool(body)


# Transactional: requests run in autocommit as under a real server, so one request's
# database error cannot poison the ones after it (it would inside a test's atomic block).
@pytest.mark.django_db(transaction=True)
def test_no_generated_request_causes_a_server_error(admin_user, arena_factory, settings):
    from django.core.wsgi import get_wsgi_application
    from rest_framework.authtoken.models import Token

    # given an arena with objects for ids to land on, and no rate limits in the way
    settings.VOTE_RATE_LIMIT = settings.NEXT_RATE_LIMIT = settings.CLIENT_RATE_LIMIT = "off"
    arena_factory("text", n_systems=2, n_prompts=2)
    headers = {"Authorization": f"Token {Token.objects.create(user=admin_user).key}"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    failures: list[str] = []
    calls = 0
    exceptions: list[str] = []

    def remember(sender, request, **kwargs):
        import sys
        import traceback

        exceptions.append("".join(traceback.format_exception(*sys.exc_info())[-3:]).strip())

    from django.core.signals import got_request_exception

    got_request_exception.connect(remember)

    for result in schema.get_all_operations():
        operation = result.ok()

        @hypothesis_settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=operation.as_strategy())
        def exercise(case):
            nonlocal calls
            calls += 1
            response = case.call(headers=headers)
            label = f"{case.method} {case.formatted_path} -> {response.status_code}"
            if response.status_code >= 500:
                cause = exceptions[-1].splitlines()[-1] if exceptions else response.text[:200]
                failures.append(f"{label}: server error: {cause}\n    {case.as_curl_command()}")
            elif response.status_code >= 400 and not has_message(response):
                failures.append(f"{label}: refused without saying why\n    {case.as_curl_command()}")

        exercise()

    got_request_exception.disconnect(remember)
    assert calls > 50
    # one line per distinct failure, so a broken endpoint does not drown the others
    unique = sorted(set(failures))
    assert not unique, f"{len(unique)} failing requests:\n" + "\n".join(unique[:40])
