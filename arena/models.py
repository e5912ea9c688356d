"""Duet's core records: systems, prompts, outputs, comparisons, judges and judgments.

Models hold fields and constraints; behaviour lives in `arena.judgments` (the only place that
writes judgments), `arena.voting.actions` (judges and comparisons) and small strategy modules
(`arena.providers`, `arena.outputs.media`).
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Modality(models.TextChoices):
    TEXT = "text", "Text"
    IMAGE = "image", "Image"
    AUDIO = "audio", "Audio"


class Provider(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded outputs only"
    TRANSFORMERS = "transformers", "Local transformers model"
    OPENAI = "openai", "OpenAI-compatible endpoint"
    DEMO_IMAGE = "demo_image", "Demo renderer (procedural images)"
    DEMO_AUDIO = "demo_audio", "Demo renderer (synthesised audio)"


DEMO_PROVIDERS = frozenset({Provider.DEMO_IMAGE, Provider.DEMO_AUDIO})


class Verdict(models.TextChoices):
    A = "a", "A is better"
    B = "b", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both are bad"


class System(models.Model):
    """A contestant: a model or pipeline that produces outputs."""

    name = models.CharField(max_length=200, unique=True)
    modality = models.CharField(max_length=10, choices=Modality.choices, default=Modality.TEXT)
    provider = models.CharField(max_length=20, choices=Provider.choices, default=Provider.UPLOADED)
    # Provider-specific settings: model, system prompt, sampling for `transformers`;
    # base_url, model, api_key_env for `openai`; style and seed for the demo renderers.
    provider_config = models.JSONField(default=dict, blank=True)
    version = models.CharField(max_length=100, blank=True, default="1")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="descendants"
    )
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True, help_text="Inactive systems leave matchmaking.")
    # Live battles: consecutive failures and the last one. A system failing repeatedly
    # sits out live matchmaking for a cool-down, then gets another chance (LMArena's
    # "outage" weight); a success resets the count.
    live_failures = models.PositiveIntegerField(default=0)
    live_failed_at = models.DateTimeField(null=True, blank=True)
    # Retired by an admin (arena.board.retirement): off the current board and out of every
    # matchmaking for good; its battles stay, and boards that include retired systems show
    # them. Retiring also clears is_active; bringing a system back sets it again.
    retired_at = models.DateTimeField(null=True, blank=True, db_index=True)
    retired_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        permissions = [("retire_system", "Can retire systems and bring them back")]

    def __str__(self):
        return self.name

    @property
    def is_demo(self) -> bool:
        return self.provider in DEMO_PROVIDERS

    @property
    def is_retired(self) -> bool:
        return self.retired_at is not None


class PromptOrigin(models.TextChoices):
    SEED = "seed", "Demo seed"
    IMPORT = "import", "Imported"
    USER = "user", "Typed by a voter"
    API = "api", "Created through the API"


# The shared prompt pool the open arena serves (matchmaking) and systems answer ahead
# (generation): imported project data stays in its project, and voters' own live prompts
# are not shown to other voters.
POOL_ORIGINS = (PromptOrigin.SEED, PromptOrigin.API)


class Prompt(models.Model):
    text = models.TextField()
    modality = models.CharField(max_length=10, choices=Modality.choices, default=Modality.TEXT)
    categories = models.JSONField(default=list, blank=True)
    language = models.CharField(max_length=16, blank=True, default="en")
    origin = models.CharField(max_length=10, choices=PromptOrigin.choices, default=PromptOrigin.API)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.text[:60]


class PromptEmbedding(models.Model):
    """A prompt's sentence embedding (arena.similar): unit length, float32 bytes. Written by
    `arena.similar.vectors.embed_missing_prompts` in the worker; a prompt without one is left
    out of the boards for prompts like another until the backfill (`embed_prompts`) runs."""

    prompt = models.OneToOneField(Prompt, on_delete=models.CASCADE, primary_key=True, related_name="embedding")
    model = models.CharField(max_length=300, help_text="all-MiniLM-L6-v2, or the folder of the model used.")
    dim = models.PositiveSmallIntegerField()
    vector = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"embedding of prompt {self.prompt_id} ({self.model})"


def output_media_path(instance, filename):
    # Media names are random so a file's URL never reveals which system made it.
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"outputs/{uuid.uuid4().hex}.{extension}"


class Output(models.Model):
    """One system's answer to one prompt: text, or a media file with metadata."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    system = models.ForeignKey(System, on_delete=models.CASCADE, related_name="outputs")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="outputs")
    text = models.TextField(blank=True)
    media = models.FileField(upload_to=output_media_path, blank=True)
    media_type = models.CharField(max_length=50, blank=True, help_text="MIME type of the media file.")
    # Token count, markdown header/list/bold counts, duration, image size, sampling used.
    metadata = models.JSONField(default=dict, blank=True)
    generation_time_s = models.FloatField(null=True, blank=True)
    # 0 for a single answer; in a live multi-turn battle, the answer to the turn-th message.
    # The whole conversation of that side is in metadata["conversation"].
    turn = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    # What serving and counting a text output derive from its text, made once for every
    # process and host (arena.outputs.rendered): {"html": ..., "style": {...}}. Empty until
    # first needed; a save that may change the text or metadata empties it.
    rendered = models.JSONField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["system", "prompt", "turn"], name="one_output_per_system_prompt_turn")
        ]

    def __str__(self):
        return f"{self.system} on prompt {self.prompt_id}"

    def save(self, *args, update_fields=None, **kwargs):
        if update_fields is None or {"text", "metadata"} & set(update_fields):
            self.rendered = None
            if update_fields is not None:
                update_fields = {*update_fields, "rendered"}
        super().save(*args, update_fields=update_fields, **kwargs)

    @property
    def kind(self) -> str:
        if self.media:
            return "audio" if self.media_type.startswith("audio/") else "image"
        return "text"


class ComparisonOrigin(models.TextChoices):
    ARENA = "arena", "Arena matchmaking"
    IMPORT = "import", "Imported"
    LIVE = "live", "Live battle"


class Comparison(models.Model):
    """A prompt with two outputs in a fixed left (A) / right (B) order."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="comparisons")
    output_a = models.ForeignKey(Output, on_delete=models.CASCADE, related_name="+")
    output_b = models.ForeignKey(Output, on_delete=models.CASCADE, related_name="+")
    origin = models.CharField(max_length=10, choices=ComparisonOrigin.choices, default=ComparisonOrigin.ARENA)
    # The unordered pair of outputs, "lowid-highid", so "has this voter judged this pair
    # already" is one indexed lookup whatever the sides were.
    pair_key = models.CharField(max_length=50, db_index=True, editable=False)
    # Arena comparisons are served to one voter; an unanswered one is served again rather
    # than re-rolled, so a voter cannot fish for the comparison they want.
    # No index of its own: the (served_to, created_at) index serves lookups by voter, and
    # "the voter's newest comparison" walks it backwards, one row whatever the history.
    served_to = models.ForeignKey(
        "Judge", null=True, blank=True, on_delete=models.SET_NULL, related_name="served_comparisons", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(output_a=F("output_b")), name="comparison_two_different_outputs"),
        ]
        indexes = [models.Index(fields=["served_to", "created_at"])]

    def __str__(self):
        return f"Comparison {self.pk} on prompt {self.prompt_id}"

    @staticmethod
    def make_pair_key(output_a_id: int, output_b_id: int) -> str:
        low, high = sorted((output_a_id, output_b_id))
        return f"{low}-{high}"

    def save(self, *args, **kwargs):
        self.pair_key = self.make_pair_key(self.output_a_id, self.output_b_id)
        super().save(*args, **kwargs)

    @property
    def modality(self) -> str:
        return self.prompt.modality


class JudgeKind(models.TextChoices):
    HUMAN = "human", "Logged-in annotator"
    ANONYMOUS = "anonymous", "Anonymous arena voter"
    EXTERNAL_HUMAN = "external_human", "External annotator (imported)"
    LLM = "llm", "LLM judge"
    REWARD_MODEL = "reward_model", "Reward model"
    EXTERNAL_JUDGE = "external_judge", "External automatic judge (imported)"


HUMAN_JUDGE_KINDS = frozenset({JudgeKind.HUMAN, JudgeKind.ANONYMOUS, JudgeKind.EXTERNAL_HUMAN})


class Judge(models.Model):
    """Who gave a judgment: a person (by account or session) or an automatic judge (by version)."""

    kind = models.CharField(max_length=20, choices=JudgeKind.choices)
    name = models.CharField(max_length=200)
    version = models.CharField(max_length=100, blank=True, default="")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="judge"
    )
    config = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Review of a voter whose votes disagree with the crowd beyond chance (arena.board.outliers):
    # while flagged_at is set, their judgments are left out of the boards and, by default,
    # of exports (DUET_EXCLUDE_FLAGGED_VOTERS). Written by arena.board.outliers only.
    flagged_at = models.DateTimeField(null=True, blank=True, db_index=True)
    flag_reason = models.TextField(blank=True)
    flagged_by = models.CharField(max_length=150, blank=True)  # "flag_outliers" or the reviewer's username

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "name", "version"], name="judge_identity")]
        permissions = [("review_judge", "Can flag voters for review and clear their flags")]

    def __str__(self):
        return f"{self.name}@{self.version}" if self.version else self.name

    @property
    def is_human(self) -> bool:
        return self.kind in HUMAN_JUDGE_KINDS

    @property
    def is_flagged(self) -> bool:
        return self.flagged_at is not None


class Judgment(models.Model):
    """One verdict on one comparison by one judge. Append-only: a correction is a new
    judgment whose `supersedes` points at the one it replaces."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="judgments")
    judge = models.ForeignKey(Judge, on_delete=models.PROTECT, related_name="judgments")
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    aspects = models.JSONField(default=dict, blank=True)
    rationale = models.TextField(blank=True)
    confidence = models.FloatField(null=True, blank=True)
    time_to_vote_ms = models.PositiveIntegerField(null=True, blank=True)
    # Audio play/pause/ended events as the browser reported them: side, type, position (s), t (ms).
    play_events = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # One original judgment per (comparison, judge); corrections chain through
            # `supersedes`, each judgment superseded at most once (the one-to-one).
            models.UniqueConstraint(
                fields=["comparison", "judge"],
                condition=Q(supersedes__isnull=True),
                name="one_judgment_per_comparison_and_judge",
            ),
        ]

    def __str__(self):
        return f"{self.judge} → {self.verdict} on {self.comparison_id}"


class Arena(models.Model):
    """A named pool of battles with its own leaderboards: the built-in arena where
    voters judge comparisons, or a battle log imported from elsewhere."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    # Debounce: set when a refresh is wanted and a task has been queued; cleared by the
    # task when it starts, so a burst of votes queues one refresh, not one per vote.
    refresh_requested_at = models.DateTimeField(null=True, blank=True)
    # Pacing: the next refresh waits until then (the last one's end plus a multiple of its
    # duration), so refreshing takes at most DUET_LEADERBOARD_REFRESH_SHARE of a worker.
    refresh_not_before = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name


class BattleSource(models.TextChoices):
    ARENA = "arena", "Voted in Duet"
    IMPORT = "import", "Imported battle log"


class Battle(models.Model):
    """One rated battle: system A vs system B and the outcome, seen from A.

    For votes in Duet it is written in the same transaction as the judgment and points at
    it (one battle per judgment, so nothing counts twice); imported battle logs have no
    judgment. Leaderboards are computed from battles, which `rebuild_battles` can
    recompute from the judgments at any time.
    """

    arena = models.ForeignKey(Arena, on_delete=models.CASCADE, related_name="battles")
    system_a = models.ForeignKey(System, on_delete=models.CASCADE, related_name="+")
    system_b = models.ForeignKey(System, on_delete=models.CASCADE, related_name="+")
    outcome = models.CharField(max_length=10, choices=Verdict.choices)
    weight = models.FloatField(default=1.0)
    modality = models.CharField(max_length=10, choices=Modality.choices, default=Modality.TEXT)
    category = models.CharField(max_length=100, blank=True, db_index=True)
    # False when the voter could have known who was who (an answer named its system).
    anonymous = models.BooleanField(default=True)
    source = models.CharField(max_length=10, choices=BattleSource.choices, default=BattleSource.ARENA)
    judge_name = models.CharField(max_length=200, blank=True)
    judgment = models.OneToOneField(
        Judgment, null=True, blank=True, on_delete=models.CASCADE, related_name="battle"
    )
    # Raw style counts per side for text battles: {"a": {length, headers, lists, bold}, "b": {...}}.
    style = models.JSONField(null=True, blank=True)
    tstamp = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["arena", "modality", "tstamp"])]


class BattleImport(models.Model):
    """One battle log imported into an arena: how many battles came in, and the rows
    skipped, counted by reason, so the arena's boards can say what was left out."""

    arena = models.ForeignKey(Arena, on_delete=models.CASCADE, related_name="imports")
    source = models.CharField(max_length=255, help_text="The log's file name.")
    format = models.CharField(max_length=10)
    modality = models.CharField(max_length=10, choices=Modality.choices, default=Modality.TEXT)
    imported = models.PositiveIntegerField()
    # reason -> rows, e.g. {"with model_a and model_b the same system": 17}
    skipped = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.source} → {self.arena}"


class LeaderboardSnapshot(models.Model):
    """A computed leaderboard: when, how, on how many votes, and the result."""

    arena = models.ForeignKey(Arena, on_delete=models.CASCADE, related_name="snapshots")
    modality = models.CharField(max_length=10, choices=Modality.choices)
    category = models.CharField(max_length=100, blank=True)
    style_control = models.BooleanField(default=False)
    anonymous_only = models.BooleanField(default=True)
    method = models.CharField(max_length=10, default="bt")
    ci = models.CharField(max_length=10, default="sandwich")
    n_battles = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # arena.ratings.Leaderboard.to_dict() plus the pairwise matrices.
    payload = models.JSONField(default=dict)

    class Meta:
        ordering = ["-computed_at", "-id"]
        indexes = [models.Index(fields=["arena", "modality", "category", "style_control", "-computed_at"])]


class LiveBattleStatus(models.TextChoices):
    GENERATING = "generating", "Systems are answering"
    READY = "ready", "Answers complete"
    VOID = "void", "Void (a side failed)"
    VOTED = "voted", "Voted"


class LiveBattle(models.Model):
    """A voter's own prompt answered live by two anonymous systems, possibly over several
    turns, then judged once for the whole conversation."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="live_battles")
    modality = models.CharField(max_length=10, choices=Modality.choices, default=Modality.TEXT)
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="live_battles")
    system_a = models.ForeignKey(System, on_delete=models.CASCADE, related_name="+")
    system_b = models.ForeignKey(System, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=12, choices=LiveBattleStatus.choices, default=LiveBattleStatus.GENERATING)
    void_reason = models.TextField(blank=True)
    comparison = models.OneToOneField(
        Comparison, null=True, blank=True, on_delete=models.SET_NULL, related_name="live_battle"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self):
        return f"Live battle {self.public_id}"


class GenerationStatus(models.TextChoices):
    QUEUED = "queued", "Waiting for the system"
    RUNNING = "running", "Answering"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class LiveGeneration(models.Model):
    """One side's answer to one turn of a live battle; `text` grows as tokens stream in,
    which is what the voter's event stream reads."""

    battle = models.ForeignKey(LiveBattle, on_delete=models.CASCADE, related_name="generations")
    side = models.CharField(max_length=1, choices=[("a", "A"), ("b", "B")])
    turn = models.PositiveSmallIntegerField(default=0)
    user_message = models.TextField()
    system = models.ForeignKey(System, on_delete=models.CASCADE, related_name="live_generations")
    status = models.CharField(max_length=10, choices=GenerationStatus.choices, default=GenerationStatus.QUEUED)
    text = models.TextField(blank=True)
    output = models.OneToOneField(Output, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    error = models.TextField(blank=True, help_text="Kept for operators; voters see a generic message.")
    queued_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    first_token_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["turn", "side"]
        constraints = [models.UniqueConstraint(fields=["battle", "side", "turn"], name="one_generation_per_side_turn")]
        indexes = [models.Index(fields=["system", "status"])]


# Webhook subscriptions and their deliveries live with their behaviour.
from .webhooks import Webhook, WebhookDelivery  # noqa: E402,F401
from .sharedstate import ChangeStamp, RateCount  # noqa: E402,F401 - shared state's tables, registered with arena
