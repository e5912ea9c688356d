"""Routing's actions: the only functions that write a judge's judgments on project items,
its unusable answers, routing decisions, the routes they set, and judging jobs.

    judge_project(project)      run the project's judge on its comparisons, in batches
    route_project(project)      judge the pending items, ask the policy, route each, keep why
    queue_job(project, kind)    the same in the worker (`routing.tasks.run_judging_job`)

A judge's verdict becomes a Judgment like any other (one per comparison and judge, so a
rerun skips what is judged); an answer without a verdict is an UnusableVerdict, never a
guessed Judgment. Judges never see a modality they do not support: those items go to people.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from django.db import transaction

from annotation.models import CheckKind, Project, ProjectItem, Route
from annotation.models import RoutingPolicy as PolicyName
from arena.errors import DuetError, InvalidInput, NotFound
from arena.judgments import NewJudgment, record_judgments
from arena.jobs import lifecycle
from arena.jobs.lifecycle import JobContext, JobFailed
from arena.models import Judge as JudgeRow
from arena.models import Judgment
from routing.judges import PROTOCOL_VERSION, UNSUPPORTED, AutomaticJudge, ImportedJudge, JudgeError, JudgeVerdict
from routing.policies import (
    HUMAN,
    JUDGE,
    NONE,
    POLICIES,
    Budget,
    LabelledCandidate,
    PolicyError,
    RoutingCandidate,
    get_policy,
)

from .calibration import Calibration, CalibrationError, fit_calibration, position_bias, without_ties
from .models import (
    ACTIVE_JOB_STATUSES,
    JobKind,
    JudgeCalibration,
    JudgingJob,
    ProjectRouting,
    RoutingDecision,
    UnusableVerdict,
)
from .specs import build_judge, check_judge_spec
from .verdicts import chunks, human_labels, items_for_judging, judge_verdict_metadata, pair_item, stored_verdicts

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, dict], None]

LEARNED_OPTIONS = frozenset({"model", "min_train", "explore", "regularisation"})


# --- settings -------------------------------------------------------------------------------


def routing_settings(project: Project) -> ProjectRouting:
    found, _ = ProjectRouting.objects.get_or_create(project=project)
    return found


def update_routing_settings(project: Project, **fields) -> ProjectRouting:
    """Change the judge spec, seed, learned-policy options, auto-routing or batch size."""
    allowed = {"judge_spec", "seed", "policy_options", "auto_route", "batch_size"}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise InvalidInput(f"unknown routing setting {unknown[0]!r}")
    if "judge_spec" in fields:
        fields["judge_spec"] = check_judge_spec(fields["judge_spec"])
    if "policy_options" in fields:
        options = fields["policy_options"] or {}
        if not isinstance(options, dict) or set(options) - LEARNED_OPTIONS:
            raise InvalidInput(f"policy_options: an object with keys among {', '.join(sorted(LEARNED_OPTIONS))}")
        try:
            get_policy(PolicyName.LEARNED, **options)
        except PolicyError as error:
            raise InvalidInput(f"policy_options: {error}") from None
        fields["policy_options"] = options
    if "batch_size" in fields and not 1 <= int(fields["batch_size"]) <= 512:
        raise InvalidInput("batch_size must be from 1 to 512 comparisons")
    routing = routing_settings(project)
    for name, value in fields.items():
        setattr(routing, name, value)
    routing.save()
    return routing


def project_budget(project: Project) -> Budget | None:
    """The project's human budget: a fraction of its regular items or a count; None if unset."""
    fraction, count = project.human_budget_fraction, project.human_budget_count
    if fraction is not None and count is not None:
        raise InvalidInput("the human budget is a fraction or a count, not both: clear one of them")
    try:
        if count is not None:
            return Budget(count=int(count))
        if fraction is not None:
            return Budget(fraction=float(fraction))
    except PolicyError as error:
        raise InvalidInput(str(error)) from None
    return None


# --- judges ---------------------------------------------------------------------------------


def judge_row(judge: AutomaticJudge, spec: str) -> JudgeRow:
    """The arena Judge row whose judgments these are: looked up by kind, name and version."""
    config = {"spec": spec, "class": type(judge).__name__, "modalities": sorted(judge.modalities)}
    if judge.kind == "llm":
        config["protocol"] = PROTOCOL_VERSION
    endpoint = getattr(judge, "endpoint", None)
    if endpoint is not None:  # the OpenAI-compatible judge: where it asks (never the key itself)
        config.update(base_url=endpoint.base_url, model=endpoint.model)
    row, _ = JudgeRow.objects.get_or_create(
        kind=judge.kind, name=judge.name, version=judge.version, defaults={"config": config}
    )
    return row


@dataclass
class JudgingSummary:
    judge: str = ""
    items: int = 0  # items considered
    to_judge: int = 0  # not judged before, of a modality the judge sees (after --limit)
    judged: int = 0  # usable verdicts written as judgments
    unparsable: int = 0  # answers without a verdict, kept as UnusableVerdict
    unsupported: int = 0  # items of a modality the judge cannot see: never shown to it
    skipped: int = 0  # judged before (a judgment or an unusable answer by this judge)
    left: int = 0  # not judged because of --limit
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def _write_verdicts(project: Project, row: JudgeRow, spec: str, batch: list[ProjectItem],
                    verdicts: list[JudgeVerdict]) -> tuple[int, int]:
    """Judgments for the usable verdicts (through the one writer, `arena.judgments`),
    UnusableVerdicts for the rest; (written, unusable).

    A concurrent job that judged the same comparison wins the unique constraint and this
    verdict is dropped (the writer skips it): one judgment per comparison and judge,
    whoever wrote it.
    """
    judgments, unusable = [], []
    for item, verdict in zip(batch, verdicts, strict=True):
        context = {"project": project.pk, "item": item.pk, "judge_spec": spec}
        if verdict.usable:
            judgments.append(NewJudgment(
                item.comparison_id, row, verdict.verdict, confidence=verdict.confidence,
                rationale=verdict.raw_text[:20000], metadata={**judge_verdict_metadata(verdict), **context},
            ))  # fmt: skip
        elif verdict.verdict != UNSUPPORTED:
            unusable.append(UnusableVerdict(
                comparison_id=item.comparison_id, judge=row, verdict=verdict.verdict, detail=verdict.detail[:2000],
                metadata={**verdict.to_dict(), **context},
            ))  # fmt: skip
    with transaction.atomic():
        written = record_judgments(judgments)
        UnusableVerdict.objects.bulk_create(unusable, ignore_conflicts=True)
    return len(written), len(unusable)


def judge_items(project: Project, items: list[ProjectItem], judge: AutomaticJudge, row: JudgeRow, spec: str, *,
                batch_size: int = 16, limit: int | None = None,
                on_progress: ProgressCallback | None = None) -> tuple[dict[int, JudgeVerdict], JudgingSummary]:
    """Judge the items this judge has not judged yet, a batch at a time; return every item's
    verdict (stored, new, or ``unsupported``) and what was done.

    Replayed verdicts (``imported:``) are judgments already: nothing is written for them,
    and an item without one stays unjudged (a later import may bring it).
    """
    summary = JudgingSummary(judge=str(row), items=len(items))
    verdicts = stored_verdicts(row, items)
    summary.skipped = len(verdicts)
    unseen = []
    for item in items:
        if item.pk in verdicts:
            continue
        modality = item.comparison.prompt.modality
        if not judge.supports(modality):
            summary.unsupported += 1
            verdicts[item.pk] = JudgeVerdict(item_id=str(item.pk), verdict=UNSUPPORTED, judge=judge.name,
                                             detail=f"{judge.name} cannot judge {modality}")
        else:
            unseen.append(item)
    fresh = unseen[:limit] if limit is not None else unseen
    summary.left = len(unseen) - len(fresh)
    summary.to_judge = len(fresh)
    replay = isinstance(judge, ImportedJudge)
    calibrate = verdict_calibrator(project, row)
    started = time.perf_counter()
    if on_progress:
        on_progress(0, len(fresh), summary.as_dict())
    for start in range(0, len(fresh), batch_size):
        batch = fresh[start : start + batch_size]
        said = [calibrate(verdict) for verdict in judge.judge([pair_item(item) for item in batch])]
        for item, verdict in zip(batch, said, strict=True):
            verdicts[item.pk] = verdict
        if replay:
            summary.unparsable += sum(not verdict.usable for verdict in said)
        else:
            written, unusable = _write_verdicts(project, row, spec, batch, said)
            summary.judged += written
            summary.unparsable += unusable
        summary.seconds = time.perf_counter() - started
        if on_progress:
            on_progress(start + len(batch), len(fresh), summary.as_dict())
    return verdicts, summary


# --- calibration ----------------------------------------------------------------------------


def project_allows_ties(project: Project) -> bool:
    return bool({"tie", "both_bad"} & set((project.schema or {}).get("verdicts", ("tie",))))


def project_calibration(project: Project, row: JudgeRow) -> Calibration | None:
    stored = JudgeCalibration.objects.filter(project=project, judge=row).first()
    return Calibration.from_dict(stored.parameters) if stored is not None else None


def verdict_calibrator(project: Project, row: JudgeRow):
    """What every fresh verdict of this judge on this project goes through before it is
    written or routed: the project's calibration of the judge, else (a schema without ties)
    the tie mass dropped, else nothing."""
    calibration = project_calibration(project, row)
    if calibration is not None:
        return calibration.apply
    return (lambda verdict: verdict) if project_allows_ties(project) else without_ties


def calibration_context(project: Project, row: JudgeRow | None) -> dict:
    """What the routing page's calibration section shows (templates/routing/_calibration.html)."""
    stored = None
    if row is not None:
        stored = JudgeCalibration.objects.filter(project=project, judge=row).select_related("judge").first()
    return {"calibration": stored, "project_allows_ties": project_allows_ties(project)}


def calibrate_judge(project: Project, row: JudgeRow) -> JudgeCalibration | None:
    """Fit (or refit) the judge's calibration on the project's comparisons that people and
    the judge both judged (the people's majority as the label), with the position bias on
    the same comparisons. None, and nothing stored, when there are too few of them."""
    labels = human_labels(project)
    if not labels:
        return None
    items = [item for ids in chunks(sorted(labels)) for item in items_for_judging(
        ProjectItem.objects.filter(project=project, check_kind=CheckKind.NONE, comparison_id__in=ids))]
    verdicts = stored_verdicts(row, items)
    judged = [(item, verdicts[item.pk]) for item in items if item.pk in verdicts and verdicts[item.pk].usable]
    try:
        calibration = fit_calibration([v for _, v in judged], [labels[item.comparison_id] for item, _ in judged],
                                      allow_ties=project_allows_ties(project),
                                      label=f"calibrated on project {project.pk}")  # fmt: skip
    except CalibrationError as error:
        logger.info("no calibration of %s on project %s: %s", row, project.pk, error)
        return None
    bias = position_bias([v for _, v in judged], [item.category for item, _ in judged])
    stored, _ = JudgeCalibration.objects.update_or_create(
        judge=row, project=project,
        defaults={"allow_ties": calibration.allow_ties, "n": calibration.n, "parameters": calibration.to_dict(),
                  "position_bias": bias.to_dict()},
    )  # fmt: skip
    return stored


def _items(queryset, item_ids: list[int] | None) -> list[ProjectItem]:
    """The queryset's items (restricted to ``item_ids`` when given) in id order, ready for judging."""
    if item_ids is None:
        return list(items_for_judging(queryset.order_by("id")))
    found = [item for ids in chunks(sorted(set(item_ids))) for item in items_for_judging(queryset.filter(pk__in=ids))]
    return sorted(found, key=lambda item: item.pk)


def _project_judge(project: Project, spec: str | None, judge: AutomaticJudge | None) -> tuple[AutomaticJudge, str, ProjectRouting]:
    """(the judge, the spec it was built from, the project's routing settings). A judge handed
    in ready-made (tests, scripts) has no spec: its Judge row records none."""
    routing = routing_settings(project)
    if judge is not None:
        return judge, "", routing
    spec = check_judge_spec(spec or routing.judge_spec)
    return build_judge(spec, project=project, batch_size=routing.batch_size), spec, routing


def judge_project(project: Project, *, spec: str | None = None, judge: AutomaticJudge | None = None, limit: int | None = None,
                  item_ids: list[int] | None = None, on_progress: ProgressCallback | None = None) -> JudgingSummary:
    """Run a judge (the project's, or ``spec``) on the project's comparisons."""
    judge, spec, routing = _project_judge(project, spec, judge)
    row = judge_row(judge, spec)
    ProjectRouting.objects.filter(pk=routing.pk).update(judge=row)
    items = _items(ProjectItem.objects.filter(project=project), item_ids)
    _, summary = judge_items(project, items, judge, row, spec,
                             batch_size=routing.batch_size, limit=limit, on_progress=on_progress)  # fmt: skip
    return summary


# --- routing --------------------------------------------------------------------------------


@dataclass
class RoutingSummary:
    policy: str
    items: int = 0  # pending items considered
    human: int = 0
    judge: int = 0
    none: int = 0  # left pending: over budget and no usable verdict
    forced_human: int = 0  # no judge can see their modality
    check_items: int = 0  # gold and attention items: always to people, outside the budget
    budget: dict = field(default_factory=dict)
    judging: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def labelled_candidates(project: Project, row: JudgeRow) -> list[LabelledCandidate]:
    """What the learned policy learns from: the project's routed items that people have
    already judged (their majority) and that this judge has judged too."""
    labels = human_labels(project)
    if not labels:
        return []
    routed = ProjectItem.objects.filter(project=project, check_kind=CheckKind.NONE).exclude(route=Route.PENDING)
    items = [item for item in items_for_judging(routed.order_by("id")) if item.comparison_id in labels]
    verdicts = stored_verdicts(row, items)
    return [
        LabelledCandidate(RoutingCandidate.build(pair_item(item), verdicts[item.pk]), labels[item.comparison_id])
        for item in items
        if item.pk in verdicts
    ]


def _policy(project: Project, routing: ProjectRouting):
    options = {k: v for k, v in (routing.policy_options or {}).items() if k in LEARNED_OPTIONS}
    try:
        return get_policy(project.routing_policy, seed=routing.seed,
                          **(options if project.routing_policy == PolicyName.LEARNED else {}))  # fmt: skip
    except PolicyError as error:
        raise InvalidInput(str(error)) from None


def _budget_state(project: Project, budget: Budget | None, batch_regular: int) -> dict:
    """How much of the human budget is spent and what this batch may spend.

    The budget covers the project's regular items (check items are outside it): a fraction
    of every item routed so far plus this batch, or a count. Items already with people count
    as spent, however they got there, so the batches together never exceed it.
    """
    regular = ProjectItem.objects.filter(project=project, check_kind=CheckKind.NONE)
    population = regular.exclude(route=Route.PENDING).count() + batch_regular
    human_before = regular.filter(route=Route.HUMAN).count()
    state = {"population": population, "human_before": human_before, "batch_size": batch_regular}
    if budget is None:
        return {"mode": "none", "value": None, "target": None, "remaining": None, **state}
    target = budget.human_count(population)
    mode, value = ("count", budget.count) if budget.count is not None else ("fraction", budget.fraction)
    return {"mode": mode, "value": value, "target": target, "remaining": max(0, target - human_before), **state}


def route_project(project: Project, *, judge: AutomaticJudge | None = None, item_ids: list[int] | None = None,
                  job: JudgingJob | None = None, on_progress: ProgressCallback | None = None) -> RoutingSummary:
    """Route the project's pending items (or those of ``item_ids`` still pending).

    1. Check items go to people (they test annotators). Under human_only everything does,
       and the judge is not run.
    2. Otherwise the judge judges the pending items it has not judged; items of a modality
       it cannot see go to people (they spend budget: people label them).
    3. A learned policy is refitted on the items people have already judged.
    4. The policy routes the rest within what is left of the budget; every decision is
       stored with its reason, the budget state and the features the policy saw.
    """
    routing = routing_settings(project)
    items = _items(ProjectItem.objects.filter(project=project, route=Route.PENDING), item_ids)
    summary = RoutingSummary(policy=project.routing_policy, items=len(items))
    if not items:
        return summary
    policy = _policy(project, routing)
    budget = project_budget(project)
    if policy.follows_budget and budget is None:
        raise InvalidInput(f"the {policy.name} policy needs a human budget: set a fraction or a count on the project")
    checks = [item for item in items if item.check_kind]
    regular = [item for item in items if not item.check_kind]

    row, verdicts = None, {}
    if project.routing_policy != PolicyName.HUMAN_ONLY and regular:
        judge, spec, routing = _project_judge(project, None, judge)
        row = judge_row(judge, spec)
        ProjectRouting.objects.filter(pk=routing.pk).update(judge=row)
        calibrate_judge(project, row)  # on what people have judged so far; applies to this batch on
        verdicts, judging = judge_items(project, regular, judge, row, spec, batch_size=routing.batch_size,
                                        on_progress=on_progress)  # fmt: skip
        summary.judging = judging.as_dict()
    unseen = {pk for pk, verdict in verdicts.items() if verdict.verdict == UNSUPPORTED}
    forced = [item for item in regular if item.pk in unseen]
    routable = [item for item in regular if item.pk not in unseen]
    candidates = [RoutingCandidate.build(pair_item(item), verdicts.get(item.pk)) for item in routable]
    if policy.name == PolicyName.LEARNED and row is not None:
        policy.fit(labelled_candidates(project, row))

    with transaction.atomic():
        # One router per project at a time: the budget read below must not change under it.
        Project.objects.select_for_update().get(pk=project.pk)
        still_pending = {pk for ids in chunks([i.pk for i in items]) for pk in ProjectItem.objects.filter(
            pk__in=ids, route=Route.PENDING).values_list("pk", flat=True)}  # fmt: skip
        checks = [item for item in checks if item.pk in still_pending]
        forced = [item for item in forced if item.pk in still_pending]
        kept = [index for index, item in enumerate(routable) if item.pk in still_pending]
        routable = [routable[index] for index in kept]
        candidates = [candidates[index] for index in kept]

        state = _budget_state(project, budget, len(forced) + len(routable))
        remaining = state["remaining"]
        allowed = 0 if remaining is None else max(0, min(remaining - len(forced), len(routable)))
        decisions = policy.route(candidates, Budget(count=allowed))
        state = {**state, "forced_human": len(forced), "batch_allowed": allowed if policy.follows_budget else None,
                 "applied": policy.follows_budget}  # fmt: skip
        policy_humans = sum(decision.route == HUMAN for decision in decisions)
        state["human_after"] = state["human_before"] + len(forced) + policy_humans

        judgment_of = {}
        for ids in chunks([item.comparison_id for item in routable] if row is not None else []):
            judgment_of.update(Judgment.objects.filter(judge=row, comparison_id__in=ids, superseded_by__isnull=True)
                               .values_list("comparison_id", "pk"))  # fmt: skip
        records = []

        def record(item, route, reason, candidate=None, score=None, budget_state=None):
            verdict = candidate.verdict if candidate is not None else verdicts.get(item.pk)
            records.append(RoutingDecision(
                project=project, item=item, job=job, route=route, policy=policy.name, reason=reason, score=score,
                judge=row, judgment_id=judgment_of.get(item.comparison_id),
                judge_verdict=verdict.verdict if verdict is not None else "",
                budget=budget_state if budget_state is not None else state,
                features=candidate.features if candidate is not None else {},
            ))  # fmt: skip

        for item in checks:
            record(item, HUMAN, f"check item ({item.check_kind}): gold and attention items go to every annotator; "
                                "outside the budget", budget_state={**state, "counted": False})  # fmt: skip
        for number, item in enumerate(forced):
            over = "" if remaining is not None and number < remaining else (
                "; over the human budget, but nothing else can label it" if remaining is not None else "")
            modality = item.comparison.prompt.modality
            candidate = RoutingCandidate.build(pair_item(item), verdicts.get(item.pk))
            record(item, HUMAN, f"{verdicts[item.pk].judge or 'the judge'} cannot judge {modality}: people label "
                                f"it{over}", candidate=candidate)  # fmt: skip
        for item, candidate, decision in zip(routable, candidates, decisions, strict=True):
            record(item, decision.route, decision.reason, candidate, decision.score)

        to_human = [item.pk for item in checks + forced] + [
            item.pk for item, decision in zip(routable, decisions) if decision.route == HUMAN
        ]
        to_judge = [item.pk for item, decision in zip(routable, decisions) if decision.route == JUDGE]
        for route, pks in ((Route.HUMAN, to_human), (Route.JUDGE, to_judge)):
            for ids in chunks(pks):
                ProjectItem.objects.filter(pk__in=ids, route=Route.PENDING).update(route=route)
        RoutingDecision.objects.bulk_create(records, batch_size=500)

    summary.items = len(checks) + len(forced) + len(routable)
    summary.check_items = len(checks)
    summary.forced_human = len(forced)
    summary.human = len(to_human)
    summary.judge = len(to_judge)
    summary.none = sum(decision.route == NONE for decision in decisions)
    summary.budget = state
    logger.info("routed %s items of project %s: %s human, %s judge, %s none", summary.items, project.pk,
                summary.human, summary.judge, summary.none)  # fmt: skip
    return summary


# --- jobs -----------------------------------------------------------------------------------


def create_job(project: Project, kind: str, *, spec: str | None = None, item_ids: list[int] | None = None,
               limit: int | None = None, trigger: str = "", user=None) -> JudgingJob:
    if kind not in JobKind.values:
        raise InvalidInput(f"kind must be one of {', '.join(JobKind.values)}")
    if limit is not None and int(limit) < 1:
        raise InvalidInput("limit must be at least 1")
    if kind == JobKind.ROUTE and spec:
        raise InvalidInput("a routing job runs the project's own judge; change the judge in the routing settings")
    spec = check_judge_spec(spec or routing_settings(project).judge_spec)
    if kind == JobKind.ROUTE and project.routing_policy not in POLICIES:
        raise InvalidInput(f"unknown routing policy {project.routing_policy!r}")
    return JudgingJob.objects.create(
        project=project, kind=kind, judge_spec=spec, item_ids=item_ids, limit=limit, trigger=trigger,
        requested_by=user if user is not None and user.is_authenticated else None,
    )  # fmt: skip


def queue_job(project: Project, kind: str, **options) -> JudgingJob:
    """Create a job and queue it on the `judging` queue once the transaction commits."""
    job = create_job(project, kind, **options)
    lifecycle.queue(job)
    return job


def active_job(project: Project) -> JudgingJob | None:
    return JudgingJob.objects.filter(project=project, status__in=ACTIVE_JOB_STATUSES).order_by("-id").first()


def execute_job(job_id: int, attempt: int | None = None, worker: str | None = None) -> str:
    """Run a queued judging or routing job to its end; returns the final status. A job that
    is not queued (a repeated delivery, a cancelled job) is left as it is."""
    return lifecycle.run_job(JudgingJob, job_id, run_judging, worker=worker or lifecycle.this_worker(),
                             attempt=attempt)  # fmt: skip


def run_judging(job: JudgingJob, context: JobContext) -> dict:
    """The work of a judging job. Progress (done of total, counts) is written after every
    batch and doubles as the heartbeat; a cancel stops it between batches, keeping what was
    judged. A retry skips what was judged. An expected failure (a judge that cannot run, a
    policy without a budget) keeps its message, anything else its traceback."""

    def progress(done: int, total: int, counts: dict) -> None:
        context.progress(phase="judging", done=done, total=total, counts=counts)
        context.stop_if_cancelled(counts=counts)

    try:
        if job.kind == JobKind.ROUTE:
            summary = route_project(job.project, item_ids=job.item_ids, job=job, on_progress=progress).as_dict()
            counts = {**summary.pop("judging", {}), **{f"routed_{k}": summary[k] for k in ("human", "judge", "none")},
                      "forced_human": summary["forced_human"], "check_items": summary["check_items"],
                      "items": summary["items"]}  # fmt: skip
        else:
            counts = judge_project(job.project, spec=job.judge_spec, limit=job.limit, item_ids=job.item_ids,
                                   on_progress=progress).as_dict()  # fmt: skip
    except (JudgeError, DuetError) as error:
        raise JobFailed(f"{getattr(error, 'message', None) or error}") from None
    judge = routing_settings(job.project).judge
    done = JudgingJob.objects.get(pk=job.pk)
    total = max(done.total, done.done)
    return {"counts": counts, "judge": judge, "done": total, "total": total}


def cancel_job(job: JudgingJob) -> JudgingJob:
    """A queued job is cancelled at once; a running one stops after its current batch."""
    return lifecycle.cancel(job)


def retry_job(job: JudgingJob) -> JudgingJob:
    """A failed or cancelled job queued again with the same settings; what was judged is skipped."""
    return lifecycle.retry(job)


def get_job(job_id) -> JudgingJob:
    try:
        return JudgingJob.objects.select_related("project").get(pk=int(job_id))
    except (JudgingJob.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"judging job {job_id} does not exist") from None


# --- signals --------------------------------------------------------------------------------


def route_imported_items(sender, project: Project, item_ids: list[int], **kwargs) -> None:
    """`arena.events.items_imported` (sent by annotation after the import commits): queue the routing of
    the new items, unless the project routes by hand or sends everything to people."""
    project = Project.objects.get(pk=project.pk)
    if project.routing_policy == PolicyName.HUMAN_ONLY or not routing_settings(project).auto_route:
        return
    try:
        queue_job(project, JobKind.ROUTE, item_ids=list(item_ids), trigger="import")
    except DuetError as error:
        # The import has committed; its items stay pending for "route pending items".
        logger.error("project %s: could not queue the routing of %s imported items: %s", project.pk,
                     len(item_ids), error.message)  # fmt: skip


__all__ = [
    "JudgingSummary", "RoutingSummary", "active_job", "cancel_job", "create_job", "execute_job", "get_job",
    "judge_items", "judge_project", "judge_row", "labelled_candidates", "project_budget", "queue_job",
    "retry_job", "route_imported_items", "route_project", "routing_settings", "run_judging", "update_routing_settings",
]
