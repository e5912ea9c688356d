"""Production settings: `check --deploy` is clean, cookies are secure, HTTPS is enforced,
and every state-changing page and API call needs a CSRF token (or a token header)."""

import json
import subprocess
import sys

import pytest
from django.test import Client

from .conftest import ROOT
from .test_permission_matrix import all_patterns

PRODUCTION_ENV = {
    "PATH": "/usr/bin:/bin",
    "DUET_PRODUCTION": "1",
    "DJANGO_SECRET_KEY": "x" * 20 + "-a-long-random-production-secret-key-0123456789",
    "DJANGO_ALLOWED_HOSTS": "duet.example.org",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://duet.example.org",
}


def run_production(code: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**PRODUCTION_ENV, "DUET_VAR_DIR": str(tmp_path / "var"), "DJANGO_SETTINGS_MODULE": "config.settings"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=120)  # fmt: skip


def test_check_deploy_is_clean(tmp_path):
    result = run_production(
        "import django, sys; django.setup(); from django.core.management import call_command;"
        "call_command('check', '--deploy', '--fail-level', 'WARNING')",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no issues" in (result.stdout + result.stderr)


PROBE = """
import django, json
django.setup()
from django.conf import settings
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
client = Client(HTTP_HOST="duet.example.org")
plain = client.get("/accounts/login/")
secure = client.get("/accounts/login/", secure=True)
print("PROBE" + json.dumps({
    "debug": settings.DEBUG,
    "plain_status": plain.status_code, "plain_location": plain.get("Location", ""),
    "secure_status": secure.status_code,
    "hsts": secure.get("Strict-Transport-Security", ""),
    "csp": secure.get("Content-Security-Policy", ""),
    "frame": secure.get("X-Frame-Options", ""),
    "nosniff": secure.get("X-Content-Type-Options", ""),
    "csrf_cookie": str(secure.cookies.get("csrftoken", "")),
    "session_secure": settings.SESSION_COOKIE_SECURE, "csrf_secure": settings.CSRF_COOKIE_SECURE,
    "session_httponly": settings.SESSION_COOKIE_HTTPONLY,
    "bad_host": Client(HTTP_HOST="evil.example.com").get("/accounts/login/", secure=True).status_code,
}))
"""


def test_production_serves_https_only_with_secure_cookies_and_headers(tmp_path):
    result = run_production(PROBE, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    probe = json.loads(result.stdout.split("PROBE", 1)[1])
    assert probe["debug"] is False
    assert probe["plain_status"] == 301 and probe["plain_location"].startswith("https://duet.example.org/")
    assert probe["secure_status"] == 200
    assert "max-age=31536000" in probe["hsts"] and "includeSubDomains" in probe["hsts"]
    assert "script-src 'self'" in probe["csp"] and probe["frame"] == "DENY" and probe["nosniff"] == "nosniff"
    assert "secure" in probe["csrf_cookie"].lower()
    assert probe["session_secure"] and probe["csrf_secure"] and probe["session_httponly"]
    assert probe["bad_host"] == 400  # DisallowedHost: ALLOWED_HOSTS is enforced


def test_production_refuses_a_missing_secret_key(tmp_path):
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != "DJANGO_SECRET_KEY"}
    result = subprocess.run([sys.executable, "-c", "import config.settings"], cwd=ROOT, capture_output=True,
                            text=True, env={**env, "DUET_VAR_DIR": str(tmp_path)})  # fmt: skip
    assert result.returncode != 0 and "DJANGO_SECRET_KEY must be set" in result.stderr


def test_no_page_opts_out_of_csrf():
    # DRF views are wrapped in csrf_exempt and enforce CSRF themselves for session logins
    # (SessionAuthentication); every other view must keep Django's check.
    exempt = []
    for name, route, pattern in all_patterns():
        callback = pattern.callback
        is_drf = hasattr(callback, "cls") and hasattr(callback.cls, "authentication_classes")
        if getattr(callback, "csrf_exempt", False) and not is_drf:
            exempt.append(name or route)
    assert not exempt, f"views exempt from CSRF: {exempt}"


@pytest.mark.django_db
def test_session_logins_need_csrf_for_votes_and_forms(arena_factory, annotator, researcher, settings):
    settings.VOTE_RATE_LIMIT = settings.NEXT_RATE_LIMIT = settings.CLIENT_RATE_LIMIT = "off"
    arena_factory("text")
    voter = Client(enforce_csrf_checks=True)
    voter.force_login(annotator)
    served = voter.get("/api/arena/next/").json()
    # a vote from a logged-in browser without the CSRF token is refused ...
    refused = voter.post("/api/arena/vote/", {"token": served["token"], "verdict": "a"}, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    # ... and accepted with it
    voter.get("/")  # the arena page sets the CSRF cookie
    accepted = voter.post("/api/arena/vote/", {"token": served["token"], "verdict": "a"},
                          content_type="application/json", HTTP_X_CSRFTOKEN=voter.cookies["csrftoken"].value)  # fmt: skip
    assert accepted.status_code == 201
    # plain Django forms too
    staff = Client(enforce_csrf_checks=True)
    staff.force_login(researcher)
    assert staff.post("/leaderboard/refresh/", {}).status_code == 403
