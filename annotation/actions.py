"""Annotation's actions: the only functions that write projects, members, items, leases,
adjudications and the judgments given in projects.

Live judgments go through `arena.voting.actions.check_vote` / `do_record_judgment` (the arena's
token, verdict, timing and audio-gate checks); the project's own checks (schema, lease,
minimum time, gold) wrap them. Imported judgments and a reviewer's corrections carry what
`arena.voting.actions.Vote` cannot (confidence, `supersedes`) and go to the same writer in
batches (`arena.judgments.record_judgments`): nothing here writes a Judgment row itself,
and the writer announces every judgment with `arena.events.judgment_recorded`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from arena.voting import actions as arena_actions
from arena import events, hotcache
from arena.judgments import NewJudgment, record_judgments
from arena.similar.vectors import queue_embedding
from arena.models import (
    HUMAN_JUDGE_KINDS,
    Comparison,
    ComparisonOrigin,
    Judge,
    JudgeKind,
    Judgment,
    Modality,
    Output,
    Prompt,
    PromptOrigin,
    Provider,
    System,
    output_media_path,
)
from arena.outputs.textstats import markdown_counts

from . import assignment as queue
from .errors import (
    AlreadyDone,
    ImportFailed,
    InvalidInput,
    LeaseExpired,
    NotAllowed,
    NotFound,
    NothingToAnnotate,
    QualityBlocked,
    TooFast,
)
from .importers import ItemSpec, MediaArchive, parse_items, read_bytes
from .models import (
    Adjudication,
    Assignment,
    AssignmentStatus,
    CheckKind,
    MembershipRole,
    Project,
    ProjectItem,
    ProjectMembership,
    QualityStatus,
    Route,
    RoutingPolicy,
    default_schema,
)
from .schema import parse_schema

logger = logging.getLogger(__name__)

MANAGE_PERMISSION = "annotation.change_project"
ADJUDICATE_PERMISSION = "annotation.add_adjudication"


# --- projects and members -------------------------------------------------------------------

PROJECT_FIELDS = frozenset(
    {
        "name", "description", "guidelines", "schema", "overlap", "gold_fraction", "gold_warn_accuracy",
        "gold_block_accuracy", "gold_min_answers", "min_seconds_per_item", "routing_policy",
        "human_budget_fraction", "human_budget_count", "is_active",
    }
)  # fmt: skip


def can_manage(user) -> bool:
    return user.is_authenticated and user.has_perm(MANAGE_PERMISSION)


def can_join(project: Project, user) -> bool:
    """Whether the user may add themselves to the project: its creator, researchers, admins."""
    return user.is_authenticated and (can_manage(user) or (project.created_by_id is not None
                                                           and project.created_by_id == user.pk))


def _check_project_fields(fields: dict) -> dict:
    unknown = sorted(set(fields) - PROJECT_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown project field {unknown[0]!r}")
    if "name" in fields:
        fields["name"] = (fields["name"] or "").strip()
        if not fields["name"]:
            raise InvalidInput("name: a project needs a name")
    if "schema" in fields:
        fields["schema"] = parse_schema(fields["schema"]).to_dict()
    if "overlap" in fields and not 1 <= int(fields["overlap"]) <= 50:
        raise InvalidInput("overlap must be from 1 to 50 judgments per item")
    for name in ("gold_fraction", "gold_warn_accuracy", "gold_block_accuracy", "human_budget_fraction"):
        value = fields.get(name)
        if value is not None and not 0 <= float(value) <= 1:
            raise InvalidInput(f"{name} must be between 0 and 1")
    warn, block = fields.get("gold_warn_accuracy"), fields.get("gold_block_accuracy")
    if warn is not None and block is not None and block > warn:
        raise InvalidInput("gold_block_accuracy must not be above gold_warn_accuracy")
    if fields.get("min_seconds_per_item") is not None and not 0 <= float(fields["min_seconds_per_item"]) <= 3600:
        raise InvalidInput("min_seconds_per_item must be from 0 to 3600")
    return fields


def create_project(*, name: str, created_by=None, **fields) -> Project:
    """A new project; its creator, when given, is its first member, so the project they
    just set up serves them items like anyone they add."""
    fields = _check_project_fields({"name": name, **fields})
    fields.setdefault("schema", default_schema())
    if Project.objects.filter(name=fields["name"]).exists():
        raise InvalidInput(f"name: a project named {fields['name']!r} already exists")
    with transaction.atomic():
        project = Project.objects.create(created_by=created_by, **fields)
        if created_by is not None and created_by.is_authenticated:
            ProjectMembership.objects.create(project=project, user=created_by, role=MembershipRole.ANNOTATOR)
    return project


def update_project(project: Project, **fields) -> Project:
    fields = _check_project_fields(dict(fields))
    merged_warn = fields.get("gold_warn_accuracy", project.gold_warn_accuracy)
    if fields.get("gold_block_accuracy", project.gold_block_accuracy) > merged_warn:
        raise InvalidInput("gold_block_accuracy must not be above gold_warn_accuracy")
    if "name" in fields and Project.objects.filter(name=fields["name"]).exclude(pk=project.pk).exists():
        raise InvalidInput(f"name: a project named {fields['name']!r} already exists")
    for name, value in fields.items():
        setattr(project, name, value)
    project.save()
    return project


def add_member(project: Project, user, role: str = MembershipRole.ANNOTATOR) -> ProjectMembership:
    if role not in MembershipRole.values:
        raise InvalidInput(f"role must be one of {', '.join(MembershipRole.values)}")
    membership, created = ProjectMembership.objects.get_or_create(project=project, user=user, defaults={"role": role})
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def remove_member(project: Project, user) -> None:
    """Their judgments stay (append-only); their running leases are released at once."""
    with transaction.atomic():
        ProjectMembership.objects.filter(project=project, user=user).delete()
        Assignment.objects.filter(project=project, annotator=user, status=AssignmentStatus.LEASED).update(
            status=AssignmentStatus.EXPIRED
        )


def membership_for(project: Project, user) -> ProjectMembership:
    if not user.is_authenticated:
        raise NotAllowed("log in to annotate")
    membership = ProjectMembership.objects.filter(project=project, user=user).first()
    if membership is None:
        raise NotAllowed(f"you are not a member of project {project.name!r}; ask a researcher to add you")
    return membership


# --- import ---------------------------------------------------------------------------------


@dataclass
class ImportSummary:
    rows: int = 0
    items_created: int = 0
    items_existing: int = 0
    check_items: int = 0
    judgments_created: int = 0
    systems_created: list[str] = field(default_factory=list)
    judges: set[str] = field(default_factory=set)
    media_files: int = 0

    def as_dict(self) -> dict:
        return {
            "rows": self.rows,
            "items_created": self.items_created,
            "items_existing": self.items_existing,
            "check_items": self.check_items,
            "judgments_created": self.judgments_created,
            "systems_created": self.systems_created,
            "judges": sorted(self.judges),
            "media_files": self.media_files,
        }

    def __str__(self):
        return (
            f"{self.rows} rows: {self.items_created} items created, {self.items_existing} already present, "
            f"{self.check_items} check items, {self.judgments_created} judgments imported from "
            f"{len(self.judges)} judges, {len(self.systems_created)} new systems, {self.media_files} media files"
        )


def import_comparisons(
    project: Project, source, filename: str, fmt: str = "duet", media_zip=None, seed: int = 0
) -> ImportSummary:
    """Import a comparison file (a binary file object; its name decides how it is read,
    `.gz` included) and its media zip (a seekable binary file object) into the project,
    all or nothing.

    Rows whose id the project already has create no new item; their judgments are added
    only where that judge has none yet, so importing the same file twice changes nothing.
    """
    specs = parse_items(read_bytes(source, filename), filename, fmt, seed=seed)
    archive = MediaArchive(media_zip) if media_zip is not None else None
    return _write_items(project, specs, archive)


@dataclass
class _Prepared:
    spec: ItemSpec
    modality: str
    media: dict  # side -> (bytes, MediaInfo)


def _prepare(project: Project, specs: list[ItemSpec], archive, existing: dict) -> list[_Prepared]:
    """Everything that can fail for a row, checked before the first write."""
    verdicts = parse_schema(project.schema).verdicts
    prepared = []
    for spec in specs:
        if spec.gold and spec.gold not in verdicts:
            raise ImportFailed(
                f"{spec.where}: field 'gold' is {spec.gold!r}, which this project's schema does not offer "
                f"({', '.join(verdicts)})"
            )
        if spec.external_id in existing:
            prepared.append(_Prepared(spec, "", {}))
            continue
        media, modality = {}, Modality.TEXT
        if spec.is_media:
            if archive is None:
                raise ImportFailed(f"{spec.where}: field 'a.media' names a file, but no media zip was uploaded")
            for side in ("a", "b"):
                media[side] = archive.read(spec.where, f"{side}.media", getattr(spec, side).media)
            kinds = {info.kind for _, info in media.values()}
            if len(kinds) != 1:
                raise ImportFailed(f"{spec.where}: field 'b.media' is {media['b'][1].kind} but 'a.media' is "
                                   f"{media['a'][1].kind}; both sides must be the same kind")  # fmt: skip
            modality = kinds.pop()
        prepared.append(_Prepared(spec, modality, media))
    return prepared


class _Lookups:
    """Systems and judges by name, created on first use within the import."""

    def __init__(self, project: Project, summary: ImportSummary):
        self.project, self.summary = project, summary
        self.systems: dict[str, System] = {}
        self.judges: dict[tuple[str, str], Judge] = {}

    def system(self, name: str, modality: str, where: str, side: str) -> System:
        system = self.systems.get(name)
        if system is None:
            system = System.objects.filter(name=name).first()
            if system is None:
                # Inactive: the open arena's matchmaking must not serve project data to voters.
                system = System.objects.create(
                    name=name, modality=modality, provider=Provider.UPLOADED, is_active=False,
                    description=f"Created by an import into project {self.project.name!r}.",
                )  # fmt: skip
                self.summary.systems_created.append(name)
            self.systems[name] = system
        if system.modality != modality:
            raise ImportFailed(
                f"{where}: field '{side}.system' names {name!r}, a {system.modality} system, "
                f"but this comparison is {modality}"
            )
        return system

    def judge(self, kind: str, name: str) -> Judge:
        key = (kind, name)
        if key not in self.judges:
            self.judges[key], _ = Judge.objects.get_or_create(kind=kind, name=name, version="")
        return self.judges[key]


# Rows are written in batches with bulk inserts: one INSERT per table per batch instead
# of six per row (the 2,312-pair HH-RLHF test set went from ~9 s to ~2 s of CPU).
IMPORT_BATCH = 500


def _write_items(project: Project, specs: list[ItemSpec], archive) -> ImportSummary:
    summary = ImportSummary(rows=len(specs))
    saved_files: list[str] = []
    try:
        with transaction.atomic():
            existing = {
                item.external_id: item
                for item in ProjectItem.objects.filter(
                    project=project, external_id__in=[spec.external_id for spec in specs]
                )
            }
            prepared = _prepare(project, specs, archive, existing)
            lookups = _Lookups(project, summary)
            route = Route.HUMAN if project.routing_policy == RoutingPolicy.HUMAN_ONLY else Route.PENDING
            fresh = [entry for entry in prepared if entry.spec.external_id not in existing]
            items = dict(existing)
            for start in range(0, len(fresh), IMPORT_BATCH):
                batch = fresh[start : start + IMPORT_BATCH]
                created = _create_items(project, batch, lookups, route, saved_files, summary)
                items.update((item.external_id, item) for item in created)
            if fresh:
                # bulk_create sends no signal. Imported prompts stay out of the arena's pool
                # today, but one stamp per import keeps every process's copies of prompts and
                # outputs honest without relying on that.
                hotcache.changed("arena.Prompt", "arena.Output")
            summary.items_created = len(fresh)
            summary.items_existing = len(prepared) - len(fresh)
            summary.check_items = sum(bool(entry.spec.check_kind) for entry in fresh)
            summary.judgments_created = _import_judgments(project, prepared, items, lookups)
            new_item_ids = [items[entry.spec.external_id].pk for entry in fresh]
            if new_item_ids:
                transaction.on_commit(
                    lambda: events.items_imported.send(sender=Project, project=project, item_ids=new_item_ids)
                )
    except BaseException:
        # The rows rolled back; the media files written for them must go too.
        for name in saved_files:
            default_storage.delete(name)
        raise
    logger.info("import into project %s: %s", project.pk, summary)
    return summary


def _create_items(project, batch: list[_Prepared], lookups: _Lookups, route, saved_files, summary) -> list[ProjectItem]:
    prompts = Prompt.objects.bulk_create(
        [
            Prompt(
                text=entry.spec.prompt,
                modality=entry.modality,
                categories=[entry.spec.category] if entry.spec.category else [],
                origin=PromptOrigin.IMPORT,
            )
            for entry in batch
        ]
    )
    queue_embedding()  # bulk_create sends no post_save: the worker embeds the new prompts after commit
    outputs = []
    for entry, prompt in zip(batch, prompts):
        for side in ("a", "b"):
            side_spec = getattr(entry.spec, side)
            output = Output(
                prompt=prompt, system=lookups.system(side_spec.system, entry.modality, entry.spec.where, side)
            )
            if side in entry.media:
                data, info = entry.media[side]
                name = default_storage.save(output_media_path(output, f"import.{info.extension}"), ContentFile(data))
                saved_files.append(name)
                summary.media_files += 1
                output.media.name = name
                output.media_type = info.media_type
                output.metadata = info.metadata
            else:
                output.text = side_spec.text
                output.metadata = markdown_counts(side_spec.text)
            outputs.append(output)
    outputs = Output.objects.bulk_create(outputs)
    comparisons = []
    for index, prompt in enumerate(prompts):
        output_a, output_b = outputs[2 * index], outputs[2 * index + 1]
        comparisons.append(
            Comparison(
                prompt=prompt,
                output_a=output_a,
                output_b=output_b,
                origin=ComparisonOrigin.IMPORT,
                # bulk_create skips Comparison.save, which sets the key.
                pair_key=Comparison.make_pair_key(output_a.pk, output_b.pk),
            )
        )
    comparisons = Comparison.objects.bulk_create(comparisons)
    return ProjectItem.objects.bulk_create(
        [
            ProjectItem(
                project=project,
                comparison=comparison,
                external_id=entry.spec.external_id,
                category=entry.spec.category,
                check_kind=entry.spec.check_kind,
                gold_verdict=entry.spec.gold,
                gold_explanation=entry.spec.gold_explanation,
                route=route,
                metadata=entry.spec.metadata,
            )
            for entry, comparison in zip(batch, comparisons)
        ]
    )


def _import_judgments(project: Project, prepared: list[_Prepared], items: dict, lookups: _Lookups) -> int:
    """Each row's judgments; the writer skips a judge who already judged that comparison."""
    new = []
    for entry in prepared:
        item = items[entry.spec.external_id]
        for judgment in entry.spec.judgments:
            if judgment.annotator:
                judge = lookups.judge(JudgeKind.EXTERNAL_HUMAN, judgment.annotator)
            else:
                judge = lookups.judge(JudgeKind.EXTERNAL_JUDGE, judgment.judge)
            new.append(NewJudgment(
                item.comparison_id, judge, judgment.verdict, aspects=judgment.aspects, rationale=judgment.rationale,
                confidence=judgment.confidence, metadata={"project": project.pk, "item": item.pk, "imported": True},
            ))  # fmt: skip
    written = record_judgments(new)
    lookups.summary.judges.update(judgment.judge.name for judgment in written)
    return len(written)


def import_into_project(name: str, source, filename: str, **options) -> tuple[Project, bool, ImportSummary]:
    """`import_comparisons` into the project called `name`, created with the default
    schema when new; a failed import leaves no project behind either."""
    with transaction.atomic():
        project = Project.objects.filter(name=name).first()
        created = project is None
        if created:
            project = create_project(name=name)
        return project, created, import_comparisons(project, source, filename, **options)


# --- leases ---------------------------------------------------------------------------------


def reclaim_expired_leases(project: Project | None = None, now=None) -> int:
    """Mark leases past their expiry as expired. Capacity never counts them anyway (see
    `assignment.taken_count`); this keeps the table honest for progress and the admin."""
    now = now or timezone.now()
    leases = Assignment.objects.filter(status=AssignmentStatus.LEASED, expires_at__lte=now)
    if project is not None:
        leases = leases.filter(project=project)
    return leases.update(status=AssignmentStatus.EXPIRED)


def _check_may_annotate(project: Project, membership: ProjectMembership) -> None:
    if not project.is_active:
        raise NothingToAnnotate(f"project {project.name!r} is paused")
    if membership.quality_status == QualityStatus.BLOCKED:
        raise QualityBlocked(queue.quality_warning(project, membership))


def next_assignment(project: Project, user, now=None) -> Assignment:
    """The annotator's current lease, or a new one on the next item they should judge.

    Locking: on PostgreSQL the candidate rows are locked with SKIP LOCKED, so concurrent
    annotators pass over an item another is leasing, and the slot count is re-read after
    the lock (a fresh statement sees the other's committed lease). On SQLite the
    transaction is IMMEDIATE (settings), so lessors run one after another.
    """
    membership = membership_for(project, user)
    _check_may_annotate(project, membership)
    now = now or timezone.now()
    with transaction.atomic():
        reclaim_expired_leases(project, now)
        current = (
            Assignment.objects.filter(project=project, annotator=user, status=AssignmentStatus.LEASED)
            .select_related("item")
            .order_by("id")
            .first()
        )
        if current is not None:
            return current
        item = _lease_candidate(project, user, now)
        if item is None:
            raise NothingToAnnotate(f"Nothing left for you in {project.name!r}: thank you!")
        assignment, _ = Assignment.objects.update_or_create(
            item=item,
            annotator=user,
            defaults={
                "project": project,
                "status": AssignmentStatus.LEASED,
                "leased_at": now,
                "expires_at": now + timezone.timedelta(seconds=queue.lease_seconds()),
                "completed_at": None,
                "judgment": None,
                "gold_correct": None,
            },
        )
        return assignment


def _lease_candidate(project: Project, user, now) -> ProjectItem | None:
    if queue.gold_due(project, user):
        check = queue.check_candidates(project, user).first()
        if check is not None:
            return check  # check items are served to everyone: no overlap to protect
    candidates = queue.regular_candidates(project, user, now)
    while True:
        # One row at a time: locking a batch would hide rows from other annotators.
        item = candidates.select_for_update(skip_locked=True, of=("self",)).first()
        if item is None:
            # Every candidate may be mid-lease by someone else; wait for one of those
            # transactions (milliseconds) instead of calling the queue empty.
            item = candidates.select_for_update(of=("self",)).first()
            if item is None:
                return None
        # Re-read under the lock: a lease committed after this query's snapshot may have
        # filled the item. A full item drops out of the next query, which sees that lease.
        taken = (
            Assignment.objects.filter(item=item)
            .filter(status__in=[AssignmentStatus.COMPLETED, AssignmentStatus.LEASED])
            .exclude(status=AssignmentStatus.LEASED, expires_at__lte=now)
            .count()
        )
        if taken < project.overlap:
            return item


def skip_assignment(project: Project, user, assignment_id: int) -> Assignment:
    """The item goes back to the pool for others and is never served to this annotator again."""
    with transaction.atomic():
        assignment = _own_assignment(project, user, assignment_id, lock=True)
        if assignment.status == AssignmentStatus.COMPLETED:
            raise AlreadyDone("you already judged this item; it cannot be skipped")
        assignment.status = AssignmentStatus.SKIPPED
        assignment.completed_at = timezone.now()
        assignment.save(update_fields=["status", "completed_at"])
    return assignment


def _own_assignment(project: Project, user, assignment_id, lock=False) -> Assignment:
    queryset = Assignment.objects.filter(project=project, annotator=user)
    if lock:
        queryset = queryset.select_for_update()
    try:
        assignment = queryset.select_related("item__comparison__prompt").filter(pk=int(assignment_id)).first()
    except (TypeError, ValueError):
        assignment = None
    if assignment is None:
        raise NotFound(f"assignment {assignment_id} is not one of yours in this project")
    return assignment


# --- judgments ------------------------------------------------------------------------------


@dataclass
class Submission:
    project: Project
    membership: ProjectMembership
    assignment: Assignment
    vote: arena_actions.Vote


@dataclass
class SubmissionResult:
    judgment: Judgment
    assignment: Assignment
    # Set for a check item answered wrongly: {"expected": verdict, "explanation": text}.
    gold_feedback: dict | None
    quality_status: str
    warning: str


def check_submission(
    project: Project,
    user,
    *,
    assignment_id,
    token,
    verdict,
    aspects=None,
    rationale="",
    time_to_vote_ms=None,
    play_events=None,
    now=None,
) -> Submission:
    membership = membership_for(project, user)
    assignment = _own_assignment(project, user, assignment_id)
    if assignment.status == AssignmentStatus.COMPLETED:
        raise AlreadyDone("you already judged this item")
    if assignment.status == AssignmentStatus.SKIPPED:
        raise AlreadyDone("you skipped this item")
    _check_may_annotate(project, membership)
    clean_aspects, clean_rationale = parse_schema(project.schema).check_answer(verdict, aspects, rationale)
    vote = arena_actions.check_vote(
        token=token,
        judge=arena_actions.judge_for_user(user),
        verdict=verdict,
        time_to_vote_ms=time_to_vote_ms,
        play_events=play_events,
    )
    if vote.comparison.pk != assignment.item.comparison_id:
        raise InvalidInput("token: this vote token belongs to another item")
    # Timed on the server from the lease, so a client cannot claim it took longer.
    elapsed = ((now or timezone.now()) - assignment.leased_at).total_seconds()
    if elapsed < project.min_seconds_per_item:
        raise TooFast(
            f"That was quick: {elapsed:.1f} s. This project asks you to spend at least "
            f"{project.min_seconds_per_item:g} s on each item; read both responses, then answer again."
        )
    vote.aspects, vote.rationale = clean_aspects, clean_rationale
    return Submission(project=project, membership=membership, assignment=assignment, vote=vote)


def do_record_submission(submission: Submission, now=None) -> SubmissionResult:
    now = now or timezone.now()
    project = submission.project
    with transaction.atomic():
        assignment = Assignment.objects.select_for_update().select_related("item").get(pk=submission.assignment.pk)
        if assignment.status not in (AssignmentStatus.LEASED, AssignmentStatus.EXPIRED):
            raise AlreadyDone(f"this item is already {assignment.get_status_display().lower()}")
        item = assignment.item
        if assignment.status == AssignmentStatus.EXPIRED or assignment.expires_at <= now:
            _reclaim_late_lease(project, assignment, now)
        vote = submission.vote
        vote.metadata = {**vote.metadata, "project": project.pk, "item": item.pk}
        judgment, created = arena_actions.do_record_judgment(vote)
        if not created:
            raise AlreadyDone("you already judged this comparison")
        assignment.status = AssignmentStatus.COMPLETED
        assignment.completed_at = now
        assignment.judgment = judgment
        feedback = None
        if item.is_check:
            assignment.gold_correct = judgment.verdict == item.gold_verdict
            if not assignment.gold_correct:
                feedback = {"expected": item.gold_verdict, "explanation": item.gold_explanation}
        assignment.save(update_fields=["status", "completed_at", "judgment", "gold_correct"])
        membership = submission.membership
        if item.is_check:
            membership = _record_check_answer(project, membership, assignment.gold_correct, now)
        elif _completes_project(project, item):
            events.send_on_commit(events.project_completed, Project, project_id=project.pk, name=project.name)
    return SubmissionResult(
        judgment=judgment,
        assignment=assignment,
        gold_feedback=feedback,
        quality_status=membership.quality_status,
        warning=queue.quality_warning(project, membership),
    )


def _completes_project(project: Project, item: ProjectItem) -> bool:
    """Whether the judgment just recorded brought `item` to the project's overlap and left
    no regular item unfinished (none waiting to be routed, every one routed to people
    judged `overlap` times). Only the submission that fills an item's last slot asks,
    so a project is announced complete once."""
    if Assignment.objects.filter(item=item, status=AssignmentStatus.COMPLETED).count() != project.overlap:
        return False
    if ProjectItem.objects.filter(project=project, check_kind=CheckKind.NONE, route=Route.PENDING).exists():
        return False
    unfinished = (
        queue.queue_items(project).filter(check_kind=CheckKind.NONE).annotate(done=queue.completed_count())
        .filter(done__lt=project.overlap)
    )  # fmt: skip
    return not unfinished.exists()


def _reclaim_late_lease(project: Project, assignment: Assignment, now) -> None:
    """A lease that ran out is honoured if the item still has a free slot; the item row is
    locked so a concurrent lessor cannot take the same slot."""
    item = ProjectItem.objects.select_for_update().get(pk=assignment.item_id)
    if item.is_check:
        return
    others = (
        ProjectItem.objects.filter(pk=item.pk)
        .annotate(taken=queue.taken_count(now, exclude_annotator=assignment.annotator_id))
        .values_list("taken", flat=True)
        .get()
    )
    if others >= project.overlap:
        raise LeaseExpired("Your time on this item ran out and others have judged it since; load the next item.")


def _record_check_answer(project: Project, membership: ProjectMembership, correct: bool, now) -> ProjectMembership:
    ProjectMembership.objects.filter(pk=membership.pk).update(
        gold_answered=F("gold_answered") + 1, gold_correct=F("gold_correct") + int(correct)
    )
    membership.refresh_from_db()
    status = queue.quality_status_for(project, membership.gold_answered, membership.gold_correct)
    if status != membership.quality_status:
        membership.quality_status = status
        membership.flagged_at = now if status != QualityStatus.OK else None
        membership.save(update_fields=["quality_status", "flagged_at"])
        if status != QualityStatus.OK:
            logger.warning(
                "project %s: annotator %s %s (gold %s/%s)",
                project.pk, membership.user_id, status, membership.gold_correct, membership.gold_answered,
            )  # fmt: skip
    return membership


# --- adjudication ---------------------------------------------------------------------------


def can_adjudicate(project: Project, user) -> bool:
    if not user.is_authenticated:
        return False
    if user.has_perm(ADJUDICATE_PERMISSION):
        return True
    return ProjectMembership.objects.filter(project=project, user=user, role=MembershipRole.REVIEWER).exists()


def adjudicate(item: ProjectItem, reviewer, verdict: str, note: str = "") -> Adjudication:
    """Settle an item: each live human judgment that disagrees with `verdict` is superseded
    by a correction from the reviewer (Judgment.supersedes is one-to-one, so one
    correction per superseded judgment). Afterwards every live human judgment of the item
    says `verdict`, and the original judgments stay for agreement statistics."""
    project = item.project
    if not can_adjudicate(project, reviewer):
        raise NotAllowed("only the project's reviewers, researchers and admins may adjudicate")
    if verdict not in parse_schema(project.schema).verdicts:
        raise InvalidInput(f"verdict must be one of {', '.join(parse_schema(project.schema).verdicts)}")
    judge = arena_actions.judge_for_user(reviewer)
    try:
        with transaction.atomic():
            adjudication = Adjudication.objects.create(item=item, reviewer=reviewer, verdict=verdict, note=note)
            live = list(
                Judgment.objects.select_for_update(of=("self",))
                .filter(comparison_id=item.comparison_id, superseded_by__isnull=True, judge__kind__in=HUMAN_JUDGE_KINDS)
                .exclude(verdict=verdict)
                .order_by("id")
            )
            record_judgments([
                NewJudgment(item.comparison_id, judge, verdict, rationale=note, supersedes=original,
                            metadata={"project": project.pk, "item": item.pk, "adjudication": adjudication.pk})
                for original in live
            ])  # fmt: skip
    except IntegrityError:
        # Another reviewer superseded one of these judgments at the same moment.
        raise AlreadyDone("another reviewer adjudicated this item at the same time; reload it") from None
    return adjudication
