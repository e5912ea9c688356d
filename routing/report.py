"""The figures of the routing page and API: where a project's items went, how far the budget
is spent, how well the judge agrees with people, and what the mix of labels is worth.

Reads only. Every figure comes with the count it is computed on, and the notes say plainly
when a judge is at chance or its verdicts follow the answers' positions.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

from django.db.models import Count

from annotation.models import CheckKind, Project, ProjectItem, Route
from arena.models import HUMAN_JUDGE_KINDS, Judge, Judgment

from .models import ACTIVE_JOB_STATUSES, JudgingJob, RoutingDecision, UnusableVerdict
from .verdicts import human_labels

# Below this many comparisons labelled by both, agreement is reported but called rough.
FEW = 30
# Agreement within this of always answering the commonest label is "at chance".
NEAR_CHANCE = 0.05
# Order consistency below this: the verdict follows the position more than the content.
POSITION_BOUND = 0.5


def _share(hits: int, total: int) -> float | None:
    return hits / total if total else None


@dataclass
class AgreementFigures:
    """Judge against people on the items both labelled.

    ``agreement``: the judge's verdict equals the people's majority (both_bad read as a
    tie). ``agreement_no_ties``: the same over items whose human label is not a tie (a
    judge's tie there counts as a disagreement), as ``evaluate_judge`` scores it.
    ``chance``: always answering the commonest human label on the same items.
    ``judge_tie_share`` / ``human_tie_share``: how often each called those items a tie.
    ``order_consistency``: share of judged items whose two orders gave the same verdict
    (an unparsable answer counts as inconsistent; judges that see one order are left out).
    """

    n: int = 0
    agreement: float | None = None
    n_no_ties: int = 0
    agreement_no_ties: float | None = None
    chance: float | None = None
    judge_tie_share: float | None = None
    human_tie_share: float | None = None
    judged: int = 0
    unparsable: int = 0
    order_known: int = 0
    order_consistency: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class _Tally:
    def __init__(self):
        self.pairs: list[tuple[str, str]] = []  # (human label, judge verdict)
        self.judged = self.unparsable = self.order_known = self.order_consistent = 0

    def figures(self) -> AgreementFigures:
        humans = [human for human, _ in self.pairs]
        no_ties = [(human, said) for human, said in self.pairs if human != "tie"]
        commonest = Counter(humans).most_common(1)
        return AgreementFigures(
            n=len(self.pairs),
            agreement=_share(sum(h == s for h, s in self.pairs), len(self.pairs)),
            n_no_ties=len(no_ties),
            agreement_no_ties=_share(sum(h == s for h, s in no_ties), len(no_ties)),
            chance=_share(commonest[0][1], len(humans)) if commonest else None,
            judge_tie_share=_share(sum(said == "tie" for _, said in self.pairs), len(self.pairs)),
            human_tie_share=_share(sum(human == "tie" for human in humans), len(humans)),
            judged=self.judged,
            unparsable=self.unparsable,
            order_known=self.order_known,
            order_consistency=_share(self.order_consistent, self.order_known),
        )


@dataclass
class LabelQuality:
    """Estimated accuracy of the project's labels as routed: each human item labelled as well
    as one annotator of the project is (Dawid-Skene reliability, weighted by judgments; an
    aggregate of several is better, so this is conservative), each judge item as well as the
    judge agrees with people where both labelled. Estimates, from the project's own data."""

    human_items: int = 0
    judge_items: int = 0
    human_accuracy: float | None = None
    human_annotators: int = 0
    judge_accuracy: float | None = None
    judge_accuracy_n: int = 0
    mix: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ProjectReport:
    project: int
    name: str
    policy: str
    judge_spec: str
    judge: str | None
    auto_route: bool
    routes: dict
    check_items: int
    budget: dict
    agreement: AgreementFigures
    categories: dict[str, AgreementFigures]
    quality: LabelQuality
    notes: list[str] = field(default_factory=list)
    active_job: dict | None = None
    decisions: int = 0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["agreement"] = self.agreement.to_dict()
        data["categories"] = {name: figures.to_dict() for name, figures in self.categories.items()}
        data["quality"] = self.quality.to_dict()
        return data


def project_judges(project: Project) -> list[Judge]:
    """Automatic judges with judgments on the project's comparisons."""
    ids = (
        Judgment.objects.filter(comparison__project_items__project=project)
        .exclude(judge__kind__in=HUMAN_JUDGE_KINDS)
        .values("judge_id").distinct()
    )  # fmt: skip
    return list(Judge.objects.filter(pk__in=ids).order_by("name", "version"))


def agreement_figures(project: Project, judge: Judge | None, labels: dict[int, str] | None = None,
                      ) -> tuple[AgreementFigures, dict[str, AgreementFigures]]:
    """Overall and per category (the item's category, "none" when it has none)."""
    overall, by_category = _Tally(), defaultdict(_Tally)
    if judge is None:
        return overall.figures(), {}
    labels = human_labels(project) if labels is None else labels
    category_of = dict(ProjectItem.objects.filter(project=project).values_list("comparison_id", "category"))
    scope = ProjectItem.objects.filter(project=project).values("comparison_id")
    judged = Judgment.objects.filter(judge=judge, comparison_id__in=scope, superseded_by__isnull=True).values_list(
        "comparison_id", "verdict", "metadata__order_consistent"
    )
    unusable = UnusableVerdict.objects.filter(judge=judge, comparison_id__in=scope).values_list(
        "comparison_id", "metadata__order_consistent"
    )
    for comparison_id, verdict, consistent in judged.iterator(chunk_size=5000):
        verdict = "tie" if verdict == "both_bad" else verdict
        for tally in (overall, by_category[category_of.get(comparison_id) or "none"]):
            tally.judged += 1
            if consistent is not None:
                tally.order_known += 1
                tally.order_consistent += bool(consistent)
            if comparison_id in labels:
                tally.pairs.append((labels[comparison_id], verdict))
    for comparison_id, consistent in unusable.iterator(chunk_size=5000):
        for tally in (overall, by_category[category_of.get(comparison_id) or "none"]):
            tally.judged += 1
            tally.unparsable += 1
            if consistent is not None:
                tally.order_known += 1
    return overall.figures(), {name: tally.figures() for name, tally in sorted(by_category.items())}


def human_accuracy(project: Project) -> tuple[float | None, int]:
    """(judgment-weighted mean Dawid-Skene reliability of the project's people, how many)."""
    from annotation.export.selection import Selection, assess_selection

    report, _ = assess_selection(Selection(project=project, source="human"))
    rows = [row for row in report.annotators if row.n_judgments]
    total = sum(row.n_judgments for row in rows)
    if not total:
        return None, 0
    return sum(row.reliability * row.n_judgments for row in rows) / total, len(rows)


def budget_figures(project: Project) -> dict:
    regular = ProjectItem.objects.filter(project=project, check_kind=CheckKind.NONE)
    counts = dict(regular.values_list("route").annotate(n=Count("pk")).order_by())
    population = sum(counts.values())
    used = counts.get(Route.HUMAN, 0)
    fraction, count = project.human_budget_fraction, project.human_budget_count
    if count is not None:
        mode, value, target = "count", count, min(count, population)
    elif fraction is not None:
        from routing.policies import Budget

        mode, value, target = "fraction", fraction, Budget(fraction=fraction).human_count(population)
    else:
        mode, value, target = "none", None, None
    return {
        "mode": mode, "value": value, "items": population, "used": used, "target": target,
        "share_used": _share(used, target) if target else None,
        "human_share": _share(used, population),
    }  # fmt: skip


def _notes(agreement: AgreementFigures, judge: Judge | None) -> list[str]:
    if judge is None:
        return ["No automatic judge has judged this project yet: run the judge to see how it agrees with people."]
    notes = []
    if agreement.order_consistency is not None and agreement.order_consistency < POSITION_BOUND:
        notes.append(
            f"{judge} gave the same verdict with the answers swapped on only "
            f"{100 * agreement.order_consistency:.0f}% of {agreement.order_known} comparisons: its verdict follows "
            "where an answer is shown more than what it says."
        )
    if agreement.n and agreement.agreement is not None and agreement.chance is not None \
            and agreement.agreement <= agreement.chance + NEAR_CHANCE:
        level = "below chance" if agreement.agreement < agreement.chance - NEAR_CHANCE else "chance level"
        notes.append(
            f"{judge} agrees with people on {100 * agreement.agreement:.0f}% of {agreement.n} comparisons; always "
            f"answering the commonest human label would score {100 * agreement.chance:.0f}%. That is {level}: "
            "its verdicts carry little information here, and routing on them saves labels at the cost of quality."
        )
    if agreement.judge_tie_share is not None and agreement.judge_tie_share >= 0.5 \
            and agreement.judge_tie_share > 2 * agreement.human_tie_share:
        notes.append(
            f"{judge} called {100 * agreement.judge_tie_share:.0f}% of these comparisons a tie; people did on "
            f"{100 * agreement.human_tie_share:.0f}%: its ties mostly mean it cannot tell, not that the answers are equal."
        )
    if agreement.judged and agreement.unparsable:
        notes.append(f"{agreement.unparsable} of {agreement.judged} answers held no verdict (kept, never guessed); "
                     "those items go to people first.")
    if 0 < agreement.n < FEW:
        notes.append(f"Only {agreement.n} comparisons have both a human label and a judge verdict: rough figures.")
    return notes


def project_report(project: Project, judge: Judge | None = None) -> ProjectReport:
    """Every figure of the routing page, for the project's judge or the ``judge`` given."""
    from .actions import routing_settings

    routing = routing_settings(project)
    judge = judge or routing.judge
    labels = human_labels(project)
    agreement, categories = agreement_figures(project, judge, labels)
    routes = dict(ProjectItem.objects.filter(project=project).values_list("route").annotate(n=Count("pk")).order_by())
    routes = {route: routes.get(route, 0) for route in Route.values}
    regular = ProjectItem.objects.filter(project=project, check_kind=CheckKind.NONE)
    human_items = regular.filter(route=Route.HUMAN).count()
    judge_items = regular.filter(route=Route.JUDGE).count()
    accuracy, annotators = human_accuracy(project)
    quality = LabelQuality(
        human_items=human_items, judge_items=judge_items, human_accuracy=accuracy, human_annotators=annotators,
        judge_accuracy=agreement.agreement, judge_accuracy_n=agreement.n,
    )  # fmt: skip
    weights = [(human_items, accuracy), (judge_items, agreement.agreement)]
    if all(value is not None for n, value in weights if n) and (human_items + judge_items):
        quality.mix = sum(n * value for n, value in weights if n) / (human_items + judge_items)
    job = JudgingJob.objects.filter(project=project, status__in=ACTIVE_JOB_STATUSES).order_by("-id").first()
    return ProjectReport(
        project=project.pk, name=project.name, policy=project.routing_policy, judge_spec=routing.judge_spec,
        judge=str(judge) if judge else None, auto_route=routing.auto_route, routes=routes,
        check_items=ProjectItem.objects.filter(project=project).exclude(check_kind=CheckKind.NONE).count(),
        budget=budget_figures(project), agreement=agreement, categories=categories, quality=quality,
        notes=_notes(agreement, judge), active_job=job_dict(job) if job else None,
        decisions=RoutingDecision.objects.filter(project=project).count(),
    )  # fmt: skip


def job_dict(job: JudgingJob) -> dict:
    return {
        "id": job.pk, "project": job.project_id, "kind": job.kind, "judge_spec": job.judge_spec,
        "judge": str(job.judge) if job.judge_id else None, "status": job.status, "done": job.done,
        "total": job.total, "percent": job.percent, "counts": job.counts, "error": job.error,
        "trigger": job.trigger, "phase": job.phase, "attempts": job.attempts, "claimed_by": job.claimed_by,
        "cancel_requested": job.cancel_requested, "created_at": job.created_at, "started_at": job.started_at,
        "heartbeat_at": job.heartbeat_at, "finished_at": job.finished_at,
    }  # fmt: skip


def decision_dict(decision: RoutingDecision) -> dict:
    return {
        "id": decision.pk, "item": decision.item_id, "external_id": decision.item.external_id,
        "category": decision.item.category, "route": decision.route, "policy": decision.policy,
        "reason": decision.reason, "score": decision.score, "judge": str(decision.judge) if decision.judge_id else None,
        "judge_verdict": decision.judge_verdict, "judgment": decision.judgment_id, "budget": decision.budget,
        "features": decision.features, "job": decision.job_id, "created_at": decision.created_at,
    }  # fmt: skip


def overview_rows(projects) -> list[dict]:
    """One row per project for /routing/: policy, budget, items per route, judge, active job."""
    from .models import ProjectRouting

    routes = defaultdict(dict)
    for project_id, route, n in (ProjectItem.objects.filter(project__in=projects)
                                 .values_list("project_id", "route").annotate(n=Count("pk")).order_by()):  # fmt: skip
        routes[project_id][route] = n
    settings = {r.project_id: r for r in ProjectRouting.objects.filter(project__in=projects).select_related("judge")}
    jobs = {}
    for job in JudgingJob.objects.filter(project__in=projects, status__in=ACTIVE_JOB_STATUSES).order_by("id"):
        jobs[job.project_id] = job
    rows = []
    for project in projects:
        routing = settings.get(project.pk)
        counts = {route: routes[project.pk].get(route, 0) for route in Route.values}
        rows.append({
            "project": project, "policy": project.routing_policy, "budget": budget_label(project),
            "routes": counts, "items": sum(counts.values()),
            "judge_spec": routing.judge_spec if routing else "smollm2",
            "judge": str(routing.judge) if routing and routing.judge_id else None,
            "job": jobs.get(project.pk),
        })  # fmt: skip
    return rows


def budget_label(project: Project) -> str:
    if project.human_budget_count is not None:
        return f"{project.human_budget_count} items"
    if project.human_budget_fraction is not None:
        return f"{100 * project.human_budget_fraction:g}%"
    return "—"
