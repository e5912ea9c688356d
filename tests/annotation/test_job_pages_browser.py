"""The job pages' scripts in headless Chromium: an export, a routing job and an import end
on their page, with their result, without a reload."""

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def mark_page(page):
    """A property that a reload would wipe out."""
    page.evaluate("window.__notReloaded = true")


def not_reloaded(page) -> bool:
    return page.evaluate("window.__notReloaded === true")


def test_an_export_is_followed_to_its_files(page, login, live_server, researcher, make_project, monkeypatch,
                                            settings, tmp_path):
    from annotation.export_tasks import export_dataset_task

    from .conftest import text_rows

    settings.ANNOTATION_EXPORT_DIR = str(tmp_path / "exports")
    rows = text_rows(3)
    for row in rows:
        row["judgments"] = [{"annotator": "vendor-1", "verdict": "b"}]
    make_project("Exported", rows=rows)
    queued = []
    monkeypatch.setattr(export_dataset_task, "delay", lambda job_id: queued.append(job_id))
    login(page, "res")
    page.goto(f"{live_server.url}/projects/export/")
    page.select_option("#format", "jsonl")
    page.click("#export-form button[type=submit]")
    page.wait_for_selector("#export-jobs tr[data-status=queued]")
    mark_page(page)
    export_dataset_task.apply(args=[queued[0]])  # the worker's part
    page.wait_for_selector(f"#export-jobs tr[data-job='{queued[0]}'] .job-files a", timeout=15000)
    row = page.locator(f"#export-jobs tr[data-job='{queued[0]}']")
    assert row.locator(".job-status").inner_text() == "succeeded" and row.locator(".job-rows").inner_text() == "3"
    assert not_reloaded(page) and page.errors == []


def test_a_routing_job_ends_in_place(page, login, live_server, researcher, monkeypatch):
    from routing import actions, tasks
    from routing.models import JudgingJob
    from tests.routing.test_job_pages import imported_verdict_project

    monkeypatch.setattr(tasks.run_judging_job, "delay", lambda job_id: None)
    project = imported_verdict_project()
    JudgingJob.objects.filter(trigger="import").delete()  # here the import commits and queues one
    login(page, "res")
    page.goto(f"{live_server.url}/routing/projects/{project.pk}/")
    page.click("#route-button")
    page.wait_for_selector("#routing-job[data-active='1']")
    assert page.inner_text("#routes-pending") == "4"
    mark_page(page)
    actions.execute_job(JudgingJob.objects.get(project=project).pk)
    page.wait_for_selector(".job-result:not([hidden])", timeout=15000)
    page.wait_for_function("document.getElementById('routes-pending').textContent === '0'", timeout=15000)
    assert page.inner_text("#routing-job .job-status") == "succeeded"
    assert "items 4" in page.inner_text("#jobs tr[data-job] .job-counts")
    assert "Route pending items (0)" in page.inner_text("#route-button")
    assert not_reloaded(page) and page.errors == []


def test_an_import_shows_its_result_in_place(page, login, live_server, researcher, make_project, tmp_path):
    from .conftest import jsonl, text_rows

    project = make_project("Imported")
    good, bad = tmp_path / "items.jsonl", tmp_path / "bad.jsonl"
    good.write_bytes(jsonl(text_rows(3)))
    rows = text_rows(2, start=5)
    rows[1]["b"] = {"system": "m"}
    bad.write_bytes(jsonl(rows))
    login(page, "res")
    page.goto(f"{live_server.url}/projects/{project.pk}/")
    mark_page(page)
    page.set_input_files("#import-form input[type=file][name=file]", str(good))
    page.click("#import-form button[type=submit]")
    page.wait_for_selector("#import-job .import-result.status", timeout=15000)
    assert "3 items created" in page.inner_text("#import-job .import-result")
    page.set_input_files("#import-form input[type=file][name=file]", str(bad))
    page.click("#import-form button[type=submit]")
    page.wait_for_selector("#import-job .import-result.error", timeout=15000)
    assert "line 2: field 'b.text' is missing" in page.inner_text("#import-job .import-result")
    assert not_reloaded(page) and page.errors == [] and project.items.count() == 3
