"""The same walk through the API: every GET operation of the OpenAPI schema (served at
/api/schema/ by drf-spectacular), with the world's real objects for the path parameters,
as each role, judged against the access policy as the pages are."""

from __future__ import annotations

import re

from django.test import Client

from .crawl import Visit, allowed_for, error_code, url_name

# Objects that belong to one voter: the API answers everyone else 404, by design (a live
# battle is its voter's own; its id reveals nothing). The world's battles are the annotator's.
OWNED_BY = {"live-battle": "annotator", "live-events": "annotator"}


# Query parameters an endpoint needs to answer anything but 400, from the world's real ids.
QUERIES = {
    "/api/leaderboard/similar/": lambda ids: {"prompt_id": ids["/api/prompts/{id}/"]},
}


def schema_paths(client: Client) -> dict:
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200, f"/api/schema/: status {response.status_code}"
    return response.json()["paths"]


def real_ids(world) -> dict[str, str | None]:
    """A real object for each path parameter, by the path it appears in; None when the
    state has none of that kind yet (its detail endpoints are walked from the state that
    has one)."""
    from annotation.models import ImportJob, Project
    from arena.models import Judge, Judgment, LiveBattle, Output, Prompt, System
    from routing.models import JudgingJob
    from arena.webhooks import Webhook, WebhookDelivery
    from training.models import TrainingRun

    def first(queryset, field="pk"):
        value = queryset.order_by("pk").values_list(field, flat=True).first()
        return None if value is None else str(value)

    project = first(Project.objects.all())
    return {
        "/api/systems/{id}/": first(System.objects.all()),
        "/api/prompts/{id}/": first(Prompt.objects.all()),
        "/api/outputs/{id}/": first(Output.objects.all()),
        "/api/judgments/{public_id}/": first(Judgment.objects.all(), "public_id"),
        "/api/arena/judges/{id}/": first(Judge.objects.all()),
        "/api/projects/{id}/": project,
        "/api/routing/projects/{id}/": project,
        "/api/routing/jobs/{job_id}/": first(JudgingJob.objects.all()),
        "/api/annotation/exports/{job_id}/": world.ids.get("export_job"),
        "/api/annotation/imports/{id}/": first(ImportJob.objects.all()),  # the world imports in its requests
        "/api/training/runs/{id}/": first(TrainingRun.objects.all()),
        "/api/live/battles/{battle_id}/": first(LiveBattle.objects.all(), "public_id"),
        "/api/webhooks/{id}/": first(Webhook.objects.all()),
        "/api/webhook-deliveries/{id}/": first(WebhookDelivery.objects.all()),
    }


def concrete(path: str, ids: dict) -> str | None:
    """The schema's path with real ids, or None when some object does not exist yet."""
    if "{" not in path:
        return path
    for prefix, value in ids.items():
        if path.startswith(prefix):
            return None if value is None else re.sub(r"\{\w+\}", value, path, count=1)
    raise AssertionError(f"{path}: give apiwalk.real_ids an object for this path's parameter")


def walk(world, client: Client, role: str, paths: dict) -> tuple[list[Visit], list[str]]:
    """Every GET of the schema as `role`; returns the visits and the paths left out (no
    object of that kind in this state)."""
    ids = real_ids(world)
    visits, left_out = [], []
    for template, operations in sorted(paths.items()):
        if "get" not in operations:
            continue
        path = concrete(template, ids)
        if path is None:
            left_out.append(template)
            continue
        query = QUERIES[template](ids) if template in QUERIES else {}
        if any(value is None for value in query.values()):
            left_out.append(template)
            continue
        response = client.get(path, query)
        if getattr(response, "streaming", False):
            response.close()  # a download: its status is what counts
        name = url_name(path)[0]
        allowed = allowed_for(role, path)
        if name in OWNED_BY and OWNED_BY[name] != role:
            allowed = None
        code = "" if getattr(response, "streaming", False) else error_code(response)
        visits.append(Visit(path, name, response.status_code, allowed, linked=False, code=code))
    return visits, left_out
