"""Every URL pattern in the URL configuration against every role.

The patterns come from `get_resolver()` walked recursively, so a new endpoint cannot slip
through: a URL that matches no row of POLICY fails the test with a message asking its
author to classify it. Each request is classified as allowed (got past the permission
gate: 2xx, 3xx other than a login redirect, 400, 404, 405) or denied (401, 403, or a
redirect to a login page); a server error fails whatever the role.
"""

import re
import uuid
from fnmatch import fnmatch

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

ROLES = ("anonymous", "annotator", "researcher", "admin")
A, D = True, False  # allowed, denied
PUBLIC = {"anonymous": A, "annotator": A, "researcher": A, "admin": A}
SIGNED_IN = {"anonymous": D, "annotator": A, "researcher": A, "admin": A}
# Voting: anonymous visitors only when DUET_OPEN_ARENA is on ("open" is resolved per run).
VOTERS = {"anonymous": "open", "annotator": A, "researcher": A, "admin": A}
RESEARCHERS = {"anonymous": D, "annotator": D, "researcher": A, "admin": A}
ADMINS = {"anonymous": D, "annotator": D, "researcher": D, "admin": A}
# Django admin pages whose model permissions differ by app and action (judgments are
# append-only, so even an admin gets 403 on their delete page): annotators and anonymous
# visitors never get in; staff as their model permissions say.
STAFF = {"anonymous": D, "annotator": D, "researcher": None, "admin": None}
STAFF_ONLY = {"anonymous": D, "annotator": D, "researcher": A, "admin": A}
# Login and logout pages: reachable by anyone (logging out redirects to the login page).
ANYONE = {"anonymous": None, "annotator": None, "researcher": None, "admin": None}
# Pages that check membership of one object (annotation projects): anonymous never.
MEMBERS = {"anonymous": D, "annotator": None, "researcher": None, "admin": None}

# (pattern on the URL name, or on the route for unnamed patterns; method; expected).
# First match wins. Keep it in one place: this is the arena's access policy.
POLICY = [
    ("login", "GET", PUBLIC),
    ("logout", "POST", ANYONE),
    ("admin:login", "GET", ANYONE),
    ("admin:logout", "GET", ANYONE),
    ("ping", "GET", PUBLIC),  # {"ok": true}: the load test's ceiling and a health probe; reads nothing
    ("schema", "GET", PUBLIC),
    ("swagger-ui", "GET", PUBLIC),
    ("^media/*", "GET", PUBLIC),  # random file names; an output's file says nothing about its system
    ("arena:arena", "GET", VOTERS),
    ("arena:leaderboard", "GET", VOTERS),
    ("arena:leaderboard-download", "GET", VOTERS),
    ("arena:leaderboard-refresh", "POST", RESEARCHERS),
    ("arena:leaderboard-mine", "GET", VOTERS),  # the voter's own board (the session's, in the open arena)
    ("arena:leaderboard-activity", "GET", VOTERS),  # counts per day, no voters
    ("leaderboard-mine-api", "GET", VOTERS),
    ("leaderboard-activity-api", "GET", VOTERS),
    # Retiring a system takes it off the board: admins only (researchers add and edit systems).
    # POST-only: a GET is refused to the others, and 405 for admins.
    ("system-retire", "GET", ADMINS),
    ("system-unretire", "GET", ADMINS),
    ("system-retire", "POST", ADMINS),
    ("system-unretire", "POST", ADMINS),
    ("arena-next", "GET", VOTERS),
    ("arena-vote", "POST", VOTERS),
    ("arena-readiness", "GET", VOTERS),  # counts of answers per modality, no systems
    ("leaderboard-api", "GET", VOTERS),
    ("leaderboard-similar-api", "GET", VOTERS),  # the board for prompts like one prompt; prompt text by id only for readers of prompts
    ("live-battle", "GET", VOTERS),
    ("live-events", "GET", VOTERS),
    ("live-battles", "POST", VOTERS),
    ("live-messages", "POST", VOTERS),
    ("live-vote", "POST", VOTERS),
    ("api-root", "GET", SIGNED_IN),
    # Annotators list systems and prompts (names, never which output is whose) ...
    ("system-*", "GET", SIGNED_IN),
    ("prompt-*", "GET", SIGNED_IN),
    ("system-list", "POST", RESEARCHERS),
    ("prompt-list", "POST", RESEARCHERS),
    ("system-detail", "PATCH", RESEARCHERS),
    ("prompt-detail", "PATCH", RESEARCHERS),
    # ... but outputs name their system, and judgments are other people's verdicts.
    ("output-*", "GET", RESEARCHERS),
    ("output-list", "POST", RESEARCHERS),
    ("judgment-*", "GET", RESEARCHERS),
    # Voters for review: a flag's reason describes how someone voted.
    ("judge-*", "GET", RESEARCHERS),
    # Webhooks carry their signing secret and point the data at other systems: admins only.
    ("webhook-*", "GET", ADMINS),
    ("webhook-list", "POST", ADMINS),
    ("webhook-detail", "PATCH", ADMINS),
    ("webhookdelivery-*", "GET", ADMINS),
    # Researchers never manage accounts, tokens or groups.
    ("admin:auth_*", "GET", ADMINS),
    ("admin:authtoken_*", "GET", ADMINS),
    ("admin:index", "GET", STAFF_ONLY),
    ("admin:app_list", "GET", STAFF),
    ("admin:arena_judgment_changelist", "GET", STAFF_ONLY),
    ("admin:arena_output_changelist", "GET", STAFF_ONLY),
    ("admin:*", "GET", STAFF),
    ("admin/*", "GET", STAFF),
    # Exports, the quality dashboard and training are research data: never annotators.
    ("*export*", "GET", RESEARCHERS),
    ("annotation_api:export-jobs", "POST", RESEARCHERS),
    ("annotation_api:export-cancel", "POST", RESEARCHERS),
    ("annotation_api:export-retry", "POST", RESEARCHERS),
    ("annotation:dashboard", "GET", RESEARCHERS),
    ("training:start", "GET", ANYONE),  # POST-only: a GET is 405 for everyone
    ("training:cancel", "GET", ANYONE),
    ("training:retry", "GET", ANYONE),
    ("training:*", "GET", RESEARCHERS),
    ("training:start", "POST", RESEARCHERS),
    ("training:cancel", "POST", RESEARCHERS),
    ("training:retry", "POST", RESEARCHERS),
    ("trainingrun-*", "GET", RESEARCHERS),
    ("trainingrun-list", "POST", RESEARCHERS),
    ("trainingrun-cancel", "POST", RESEARCHERS),
    ("trainingrun-retry", "POST", RESEARCHERS),
    ("routing:settings", "GET", MEMBERS),  # POST-only: a GET is 405 once logged in
    ("routing:start", "GET", MEMBERS),
    ("routing:cancel", "GET", MEMBERS),
    ("routing:retry", "GET", MEMBERS),
    ("routing:settings", "POST", RESEARCHERS),
    ("routing:start", "POST", RESEARCHERS),
    ("routing:cancel", "POST", RESEARCHERS),
    ("routing:retry", "POST", RESEARCHERS),
    ("routing:*", "GET", RESEARCHERS),
    ("routing_api:judge", "GET", MEMBERS),  # POST-only: a GET is 405 once logged in
    ("routing_api:route", "GET", MEMBERS),
    ("routing_api:job-cancel", "GET", MEMBERS),
    ("routing_api:job-retry", "GET", MEMBERS),
    ("routing_api:*", "GET", RESEARCHERS),
    ("routing_api:judge", "POST", RESEARCHERS),
    ("routing_api:route", "POST", RESEARCHERS),
    ("routing_api:job-cancel", "POST", RESEARCHERS),
    ("routing_api:job-retry", "POST", RESEARCHERS),
    # Annotation projects: membership decides (annotation's own tests cover who); only
    # researchers and admins create projects.
    # The permission is checked before the body is validated: an annotator's empty (invalid)
    # body gets 403, not 400.
    # Imports in the worker: whoever may import (researchers, admins).
    ("annotation_api:import-job-cancel", "GET", MEMBERS),  # POST-only: a GET is 405 once logged in
    ("annotation_api:import-job-retry", "GET", MEMBERS),
    ("annotation_api:import-job-*", "GET", RESEARCHERS),
    ("annotation_api:import-job-cancel", "POST", RESEARCHERS),
    ("annotation_api:import-job-retry", "POST", RESEARCHERS),
    ("annotation:import-cancel", "POST", RESEARCHERS),
    ("annotation:import-retry", "POST", RESEARCHERS),
    ("annotation_api:project-list", "POST", RESEARCHERS),
    ("annotation_api:project-detail", "PATCH", RESEARCHERS),
    ("annotation:create", "GET", RESEARCHERS),
    ("annotation:*", "GET", MEMBERS),
    ("annotation_api:project-*", "GET", MEMBERS),
    ("annotation_api:project-import-items", "POST", MEMBERS),
    ("annotation_api:project-judgment", "POST", MEMBERS),
    ("annotation_api:project-skip", "POST", MEMBERS),
    ("annotation_api:project-adjudicate", "POST", MEMBERS),
]
# Admin pages researchers must never reach, whatever the permissions of other apps say.
NEVER_FOR_RESEARCHERS = ("admin:auth_user_", "admin:auth_group_", "admin:authtoken_")


def walk(patterns, prefix="", namespace=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = ":".join(filter(None, [namespace, pattern.namespace]))
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else (pattern.name or "")
            yield name, prefix + str(pattern.pattern), pattern


def all_patterns():
    return list(walk(get_resolver().url_patterns))


def policy_for(name: str, route: str, method: str):
    key = name or route
    for pattern, policy_method, policy in POLICY:
        if policy_method == method and fnmatch(key, pattern):
            return policy
    return None


def methods_for(name: str, route: str) -> list[str]:
    return [method for method in ("GET", "POST", "PATCH") if policy_for(name, route, method) is not None]


@pytest.fixture
def world(make_user, arena_factory):
    """A user per role and one real object of every kind a URL can name."""
    from django.apps import apps

    from arena.voting import actions
    from arena.models import Judgment

    users = {"anonymous": None, **{role: make_user(role, role) for role in ROLES[1:]}}
    systems, prompts = arena_factory("text", n_systems=2, n_prompts=1)
    judge = actions.judge_for_user(make_user("voter"))
    comparison = actions.next_comparison(judge)
    judgment = Judgment.objects.create(comparison=comparison, judge=judge, verdict="a")
    from rest_framework.authtoken.models import Token

    Token.objects.create(user=users["admin"])

    def object_id(app_label: str, model_name: str) -> str:
        model = apps.get_model(app_label, model_name)
        obj = model.objects.order_by("pk").first()
        return str(obj.pk) if obj is not None else "999999"  # none yet: the page redirects or 404s

    values = {
        "admin:auth_user_password_change": {"id": users["annotator"].pk},
        "system-detail": {"pk": systems[0].pk},
        "prompt-detail": {"pk": prompts[0].pk},
        "output-detail": {"pk": systems[0].outputs.first().pk},
        "judgment-detail": {"public_id": judgment.public_id},
        "judge-detail": {"pk": judge.pk},
    }
    return users, values, object_id


def fill(route: str, name: str, values: dict, object_id) -> str:
    """A concrete path for a route: real objects where the URL names one, else dummies."""
    known = dict(values.get(name, {}))
    admin_model = re.match(r"admin:(\w+?)_(\w+)_(change|delete|history)$", name)
    generic = {
        "format": "json", "app_label": "arena", "url": "no-such-page/", "path": "outputs/none.png",
        "fmt": "json", "battle_id": uuid.uuid4(), "pk": 999999, "item_pk": 999999, "item_id": 999999,
        "content_type_id": 1, "object_id": 1, "job_id": "no-such-job", "run_id": 999999,
        "assignment_id": 999999, "user_id": 999999, "kind": "judge", "uidb64": "MQ", "token": "set-password",
    }  # fmt: skip

    def value(param: str):
        if param in known:
            return known[param]
        if param == "object_id" and admin_model:
            app_label, rest = admin_model.group(1), admin_model.group(2)
            for candidate in (f"{app_label}_{rest}".split("_", 1)[1], rest):
                try:
                    return object_id(app_label, candidate)
                except LookupError:
                    continue
        if param in generic:
            return generic[param]
        raise AssertionError(f"{name or route}: give test_permission_matrix.fill a value for <{param}>")

    path = re.sub(r"\(\?P<(\w+)>(?:[^()]|\([^()]*\))*\)", lambda m: str(value(m.group(1))), route)
    path = re.sub(
        r"<(\w+:)?(\w+)>",
        lambda m: ".json" if m.group(1) == "drf_format_suffix:" else (
            str(value(m.group(2))) if m.group(1) != "int:" or str(value(m.group(2))).isdigit() else "999999"
        ),
        path,
    )
    path = path.replace("^", "").replace("$", "").replace("\\.", ".").replace("/?", "/")
    path = re.sub(r"\(\?:[^)]*\)\??", "", path)
    return "/" + path.lstrip("/")


def is_denied(response) -> bool:
    if response.status_code in (401, 403):
        return True
    location = response.get("Location", "")
    return response.status_code in (301, 302) and ("/accounts/login/" in location or "/admin/login/" in location)


def test_every_url_is_classified():
    unclassified = [
        f"{name or '(unnamed)'}  {route}" for name, route, _ in all_patterns() if not methods_for(name, route)
    ]
    assert not unclassified, (
        "These URLs have no access policy. Add a row for each to POLICY in "
        "tests/reliability/test_permission_matrix.py (who may GET/POST it):\n  " + "\n  ".join(unclassified)
    )


def check_matrix(world, open_arena: bool, roles=ROLES, only_open=False) -> list[str]:
    users, values, object_id = world
    failures = []
    for name, route, _ in all_patterns():
        for method in methods_for(name, route):
            expected_by_role = policy_for(name, route, method)
            if only_open and "open" not in expected_by_role.values():
                continue
            path = fill(route, name, values, object_id)
            for role in roles:
                expected = expected_by_role[role]
                if expected == "open":
                    expected = open_arena
                client = Client(raise_request_exception=False)
                if users[role] is not None:
                    client.force_login(users[role])
                response = getattr(client, method.lower())(path, **({} if method == "GET" else {"data": {}}))
                label = f"{method} {path} ({name or route}) as {role}"
                if response.status_code >= 500:
                    failures.append(f"{label}: server error {response.status_code}")
                elif role == "researcher" and name.startswith(NEVER_FOR_RESEARCHERS) and response.status_code != 403:
                    failures.append(f"{label}: researchers must get 403 on account pages, got {response.status_code}")
                elif expected is not None and is_denied(response) == expected:
                    want = "allowed" if expected else "denied"
                    failures.append(f"{label}: expected {want}, got {response.status_code}")
    return failures


def test_permission_matrix(world, settings):
    settings.OPEN_ARENA = False
    settings.VOTE_RATE_LIMIT = settings.NEXT_RATE_LIMIT = settings.CLIENT_RATE_LIMIT = "off"
    failures = check_matrix(world, open_arena=False)
    assert not failures, "\n".join(failures)


def test_the_open_arena_is_the_only_way_anonymous_visitors_vote(world, settings):
    # closed: covered above (every VOTERS row denies anonymous); open: those rows let them in
    settings.OPEN_ARENA = True
    settings.VOTE_RATE_LIMIT = settings.NEXT_RATE_LIMIT = settings.CLIENT_RATE_LIMIT = "off"
    failures = check_matrix(world, open_arena=True, roles=("anonymous",), only_open=True)
    assert not failures, "\n".join(failures)


def test_annotators_never_see_identities_or_other_judgments(world, client_for):
    users, values, _ = world
    annotator = client_for(users["annotator"])
    served = annotator.get("/api/arena/next/").json()
    from arena.models import System

    raw = str(served)
    assert not any(name in raw for name in System.objects.values_list("name", flat=True))
    assert annotator.get("/api/judgments/").status_code == 403
    assert annotator.get(f"/api/judgments/{values['judgment-detail']['public_id']}/").status_code == 403
    assert annotator.get("/api/outputs/").status_code == 403
