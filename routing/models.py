"""Routing's records: a project's judge settings, judging jobs, the verdicts that are not
judgments, and every routing decision with its reason.

A judge's usable verdicts are arena `Judgment` rows like any other (kind `llm`,
`reward_model` or `external_judge`, one per comparison and judge). Fields only; every write
goes through `routing.actions`.
"""

from django.conf import settings
from django.db import models

from arena.jobs.models import ACTIVE, Job, JobStatus


class ProjectRouting(models.Model):
    """How a project's comparisons are judged and routed, beside the project's own
    `routing_policy` and human budget (annotation.Project)."""

    project = models.OneToOneField("annotation.Project", on_delete=models.CASCADE, related_name="routing_settings")
    judge_spec = models.CharField(
        max_length=500, default="smollm2",
        help_text="smollm2, generate-smollm2, model:/dir, openai:[MODEL], reward:RUN_ID or imported:NAME",
    )  # fmt: skip
    seed = models.IntegerField(default=0, help_text="Seed of the random and learned policies' draws.")
    # Options of the learned policy (model, min_train, explore, regularisation).
    policy_options = models.JSONField(default=dict, blank=True)
    auto_route = models.BooleanField(default=True, help_text="Route newly imported items at once, in the worker.")
    batch_size = models.PositiveIntegerField(default=16, help_text="Comparisons per judge call (and progress step).")
    # The judge whose judgments the routing page reports on: the one the last job ran.
    judge = models.ForeignKey("arena.Judge", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"routing of {self.project}"


class JobKind(models.TextChoices):
    JUDGE = "judge", "Judge the project's comparisons"
    ROUTE = "route", "Judge and route the pending items"


ACTIVE_JOB_STATUSES = ACTIVE  # a judging job goes through the job lifecycle (arena.jobs)
__all__ = ["ACTIVE_JOB_STATUSES", "JobStatus"]


class JudgingJob(Job):
    """One run of a judge (and, for `route`, of the policy) over a project, in the worker.
    Status, claim, heartbeat, done of total, cancel and attempts: `arena.jobs.models.Job`."""

    task_name = "routing.tasks.run_judging_job"
    noun = "judging job"

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="judging_jobs")
    kind = models.CharField(max_length=10, choices=JobKind.choices)
    judge_spec = models.CharField(max_length=500)
    judge = models.ForeignKey("arena.Judge", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # judged, skipped, unparsable, unsupported, and for routing jobs routed_{human,judge,none}.
    counts = models.JSONField(default=dict, blank=True)
    # Only these items (an import's new items); null: every pending item (route) or every item (judge).
    item_ids = models.JSONField(null=True, blank=True)
    limit = models.PositiveIntegerField(null=True, blank=True, help_text="Judge at most this many comparisons.")
    trigger = models.CharField(max_length=20, blank=True, help_text="page, api, import or command")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "status"])]

    def __str__(self):
        return f"{self.get_kind_display()} job {self.pk} on {self.project}"

    def retry_fields(self) -> dict:
        return {"counts": {}}

    @property
    def percent(self) -> int:
        if self.status == JobStatus.SUCCEEDED:
            return 100
        return int(100 * self.done / self.total) if self.total else 0


class UnusableVerdict(models.Model):
    """A judge's answer on a comparison that holds no verdict (it did not follow the format).

    Never a Judgment: nothing is guessed. Kept, with what the judge said, so a rerun does not
    ask again and the audit shows it; the router sends such comparisons to humans first.
    """

    comparison = models.ForeignKey("arena.Comparison", on_delete=models.CASCADE, related_name="unusable_verdicts")
    judge = models.ForeignKey("arena.Judge", on_delete=models.PROTECT, related_name="unusable_verdicts")
    verdict = models.CharField(max_length=12, default="unparsable")
    detail = models.TextField(blank=True)
    # routing.judges.JudgeVerdict.to_dict() (orders, raw text) plus project and item.
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["comparison", "judge"], name="one_unusable_verdict_per_comparison_judge")
        ]

    def __str__(self):
        return f"{self.judge}: {self.verdict} on {self.comparison_id}"


class DecisionRoute(models.TextChoices):
    HUMAN = "human", "Human annotators"
    JUDGE = "judge", "The judge's verdict is kept"
    # Over budget and the judge has no usable verdict: the item stays pending, unlabelled.
    NONE = "none", "Left pending, without a label"


class RoutingDecision(models.Model):
    """One routing decision on one project item: where it went, why, and what the policy saw."""

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="routing_decisions")
    item = models.ForeignKey("annotation.ProjectItem", on_delete=models.CASCADE, related_name="routing_decisions")
    job = models.ForeignKey(JudgingJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions")
    route = models.CharField(max_length=10, choices=DecisionRoute.choices)
    policy = models.CharField(max_length=40)
    reason = models.TextField()
    score = models.FloatField(null=True, blank=True, help_text="The policy's priority for humans; higher went first.")
    judge = models.ForeignKey("arena.Judge", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The judge's judgment on the item: its label when routed to the judge.
    judgment = models.ForeignKey("arena.Judgment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    judge_verdict = models.CharField(max_length=12, blank=True)
    # mode, value, target, human_before, batch_size, batch_allowed, human_after.
    budget = models.JSONField(default=dict, blank=True)
    # routing.features.comparison_features of the item as the policy saw it.
    features = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["project", "route"])]

    def __str__(self):
        return f"{self.item} → {self.route} ({self.policy})"


class JudgeCalibration(models.Model):
    """A judge's calibration against people on one project (routing.calibration.Calibration).

    Refitted as people judge more of the comparisons the judge judged; every verdict the
    judge writes on the project afterwards is calibrated by it.
    """

    judge = models.ForeignKey("arena.Judge", on_delete=models.CASCADE, related_name="calibrations")
    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="judge_calibrations")
    allow_ties = models.BooleanField(default=True)
    n = models.PositiveIntegerField(help_text="Comparisons judged by both the judge and people.")
    # Calibration.to_dict(): classes, coef, intercept, the tie rate, scores before and after.
    parameters = models.JSONField()
    # routing.calibration.PositionBias.to_dict() on the same comparisons.
    position_bias = models.JSONField(default=dict, blank=True)
    fitted_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["judge", "project"], name="one_calibration_per_judge_project")]

    def __str__(self):
        return f"calibration of {self.judge} on {self.project} ({self.n} comparisons)"
