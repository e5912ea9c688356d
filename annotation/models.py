"""Managed annotation projects: items to judge, who may judge them, and the leases that
hand one item to one annotator at a time.

Judgments themselves are arena `Judgment` rows (append-only, one vocabulary); a project's
judgments carry `metadata = {"project": project.id, "item": item.id}`. Models hold fields
and constraints only; every write goes through `annotation.actions`.

Schema (`Project.schema`, validated by `annotation.schema.parse_schema`)::

    {
      "verdicts": ["a", "b", "tie", "both_bad"],        # any non-empty subset, in button order
      "aspects": [                                      # optional
        {"name": "helpfulness", "label": "Helpfulness", "scale": "likert", "points": 5},
        {"name": "harmlessness", "scale": "ab"}         # A / B / tie
      ],
      "rationale": {"enabled": true, "min_length": 20}  # min_length 0: optional rationale
    }

A judgment's `aspects` then reads ``{"helpfulness": {"a": 4, "b": 2}, "harmlessness": "a"}``.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from arena.jobs.models import Job
from arena.models import Comparison, Judgment, Verdict


def default_schema() -> dict:
    return {
        "verdicts": ["a", "b", "tie", "both_bad"],
        "aspects": [],
        "rationale": {"enabled": False, "min_length": 0},
    }


class RoutingPolicy(models.TextChoices):
    # The names of routing.policies.POLICIES. Under human_only an import sends items straight
    # to the queue; under the others items arrive `pending` and the routing app decides
    # each item's `route` (annotation never imports it: see arena.events.items_imported).
    HUMAN_ONLY = "human_only", "Every item goes to human annotators"
    JUDGE_ONLY = "judge_only", "Every item keeps the automatic judge's verdict"
    RANDOM = "random", "A random share of items, within the budget, goes to humans"
    UNCERTAINTY = "uncertainty", "The items the judge is least sure of go to humans, within the budget"
    LEARNED = "learned", "A model of where the judge disagrees with people picks the items for humans"


class Project(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    # Markdown, rendered with arena.outputs.rendering.render_markdown beside every task.
    guidelines = models.TextField(blank=True)
    schema = models.JSONField(default=default_schema)
    overlap = models.PositiveSmallIntegerField(
        default=3, help_text="Judgments each (non-gold) item needs from the project's annotators."
    )

    # Quality. Gold items are served to every annotator (they do not count toward overlap);
    # this fraction of an annotator's items are gold while unseen gold items remain.
    gold_fraction = models.FloatField(default=0.1)
    gold_warn_accuracy = models.FloatField(default=0.7)
    gold_block_accuracy = models.FloatField(default=0.5)
    # Thresholds apply only after this many gold answers: one slip must not block anyone.
    gold_min_answers = models.PositiveSmallIntegerField(default=3)
    min_seconds_per_item = models.FloatField(
        default=0.0, help_text="A judgment given sooner after the item was leased is refused."
    )

    # Routing (the routing issue fills these in; only `human` items reach the queue).
    routing_policy = models.CharField(max_length=40, choices=RoutingPolicy.choices, default=RoutingPolicy.HUMAN_ONLY)
    human_budget_fraction = models.FloatField(null=True, blank=True)
    human_budget_count = models.PositiveIntegerField(null=True, blank=True)

    is_active = models.BooleanField(default=True, help_text="Inactive projects serve no items.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.name


class MembershipRole(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    # Reviewers annotate too, and may adjudicate conflicts.
    REVIEWER = "reviewer", "Reviewer"


class QualityStatus(models.TextChoices):
    OK = "ok", "OK"
    WARNED = "warned", "Warned: gold accuracy below the warning threshold"
    BLOCKED = "blocked", "Blocked: gold accuracy below the blocking threshold"


class ProjectMembership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="project_memberships")
    role = models.CharField(max_length=10, choices=MembershipRole.choices, default=MembershipRole.ANNOTATOR)
    # Recomputed after each gold answer, stored so researchers see who is flagged and the
    # queue can refuse a blocked annotator with one lookup.
    quality_status = models.CharField(max_length=10, choices=QualityStatus.choices, default=QualityStatus.OK)
    gold_answered = models.PositiveIntegerField(default=0)
    gold_correct = models.PositiveIntegerField(default=0)
    flagged_at = models.DateTimeField(null=True, blank=True)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_project_user")]
        ordering = ["project", "user__username"]

    def __str__(self):
        return f"{self.user} in {self.project} ({self.role})"

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_answered if self.gold_answered else None


class Route(models.TextChoices):
    HUMAN = "human", "Human annotators"
    JUDGE = "judge", "Automatic judge"
    PENDING = "pending", "Not routed yet"


class CheckKind(models.TextChoices):
    NONE = "", "Regular item"
    GOLD = "gold", "Gold item"
    # An item with an obvious answer (e.g. one side is empty or off-topic): it tests
    # attention rather than judgement, and counts toward the same accuracy.
    ATTENTION = "attention", "Attention check"


class ProjectItem(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="items")
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="project_items")
    # The import's `id`, or a content hash when it had none: re-importing creates nothing twice.
    external_id = models.CharField(max_length=200)
    category = models.CharField(max_length=100, blank=True, db_index=True)
    check_kind = models.CharField(max_length=10, choices=CheckKind.choices, default=CheckKind.NONE, blank=True)
    gold_verdict = models.CharField(max_length=10, choices=Verdict.choices, blank=True)
    gold_explanation = models.TextField(blank=True, help_text="Shown to an annotator after a wrong answer.")
    route = models.CharField(max_length=10, choices=Route.choices, default=Route.HUMAN)
    # Anything else the source row carried (source format, original labels' ids, ...).
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "external_id"], name="one_item_per_external_id"),
            models.UniqueConstraint(fields=["project", "comparison"], name="one_item_per_project_comparison"),
            # A check item without an expected verdict could never be scored.
            models.CheckConstraint(
                condition=Q(check_kind="") | ~Q(gold_verdict=""), name="check_item_has_gold_verdict"
            ),
        ]
        indexes = [models.Index(fields=["project", "route", "check_kind"])]

    def __str__(self):
        return f"{self.project} / {self.external_id}"

    @property
    def is_check(self) -> bool:
        return bool(self.check_kind)


class AssignmentStatus(models.TextChoices):
    LEASED = "leased", "Leased"
    COMPLETED = "completed", "Completed"
    SKIPPED = "skipped", "Skipped"
    # A lease past its expiry that was reclaimed; the same row is re-leased if the same
    # annotator is later served the item again.
    EXPIRED = "expired", "Expired"


class Assignment(models.Model):
    """The lease of one item to one annotator. One row per (item, annotator): an annotator
    judges an item at most once, and a skipped item is not served to them again."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assignments")
    item = models.ForeignKey(ProjectItem, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    status = models.CharField(max_length=10, choices=AssignmentStatus.choices, default=AssignmentStatus.LEASED)
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    judgment = models.OneToOneField(
        Judgment, null=True, blank=True, on_delete=models.SET_NULL, related_name="assignment"
    )
    # Set for check items once answered: did the verdict match the gold verdict?
    gold_correct = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["item", "annotator"], name="one_assignment_per_item_annotator")]
        indexes = [
            models.Index(fields=["item", "status", "expires_at"]),
            models.Index(fields=["project", "annotator", "status"]),
        ]

    def __str__(self):
        return f"{self.item} → {self.annotator} ({self.status})"


class Adjudication(models.Model):
    """A reviewer's final verdict on a conflicting item. The reviewer's judgments that
    supersede each disagreeing human judgment point back here through
    `Judgment.metadata["adjudication"]`; the latest adjudication of an item is its label."""

    item = models.ForeignKey(ProjectItem, on_delete=models.CASCADE, related_name="adjudications")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.item}: {self.verdict} by {self.reviewer}"


def new_export_id() -> str:
    import uuid

    return uuid.uuid4().hex


class ExportJob(Job):
    """An export run in the worker (`annotation.export`): its options, and when it has
    succeeded its result and files. Status, claim, heartbeat, rows done of total, cancel and
    attempts: `arena.jobs.models.Job`. The files live in the export folder under the id
    (shared storage on several machines); the state lives here, where every host reads it."""

    task_name = "annotation.export_tasks.export_dataset_task"
    noun = "export"

    # Hex, no dashes: the folder's name and the id in the URLs, as before jobs were rows.
    id = models.CharField(max_length=32, primary_key=True, default=new_export_id, editable=False)
    options = models.JSONField(help_text="annotation.export.options.ExportOptions.to_dict()")
    result = models.JSONField(null=True, blank=True)
    files = models.JSONField(default=dict, blank=True, help_text="part name (rows, media) -> path")
    requested_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"export {self.pk[:8]}"

    def retry_fields(self) -> dict:
        return {"result": None, "files": {}}


class ImportJob(Job):
    """A comparison file imported in the worker (`annotation.import_jobs`), for files too
    large for a request. The upload is stored until it is imported (a failed or cancelled
    import keeps it ANNOTATION_IMPORT_KEEP_DAYS days), so a retry imports the same bytes;
    the import itself is all or nothing, as in a request."""

    task_name = "annotation.import_tasks.import_comparisons_task"
    noun = "import"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_jobs")
    filename = models.CharField(max_length=300, help_text="The uploaded file's name (it decides how it is read).")
    format = models.CharField(max_length=20, default="duet")
    seed = models.IntegerField(default=0)
    folder = models.CharField(max_length=500, blank=True, help_text=(
        'The stored upload ("stored:imports/<uuid>", its media zip beside it); empty once deleted.'))
    has_media_zip = models.BooleanField(default=False)
    result = models.JSONField(null=True, blank=True, help_text="annotation.actions.ImportSummary.as_dict()")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"import {self.pk} of {self.filename} into {self.project}"

    def retry_fields(self) -> dict:
        return {"result": None}

    def retry_refused(self) -> str:
        return self.upload_gone_message() if not self.folder else ""

    def upload_gone_message(self) -> str:
        return (f"the upload is no longer kept (a failed or cancelled import keeps it "
                f"{settings.ANNOTATION_IMPORT_KEEP_DAYS:g} days); upload it again ({self.filename})")  # fmt: skip
