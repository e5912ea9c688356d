"""Duet settings, read from the environment (12-factor).

Every variable read here is listed in the README's settings table; a test keeps the two
in step. Defaults are the embedded ones: SQLite, the filesystem Celery broker, DEBUG on
for local use. Production sets DUET_PRODUCTION=1, which turns DEBUG off and refuses to
start without DJANGO_SECRET_KEY.
"""

import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}")


def env_number(name: str, default, kind=int):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return kind(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a {kind.__name__}, got {value!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_json(name: str, default: dict) -> dict:
    value = os.environ.get(name)
    if value is None or value == "":
        return dict(default)
    try:
        parsed = json.loads(value)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} must be a JSON object, got {value!r}: {error}") from None
    if not isinstance(parsed, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object, got {value!r}")
    return parsed


PRODUCTION = env_bool("DUET_PRODUCTION", False)
DEBUG = env_bool("DJANGO_DEBUG", not PRODUCTION)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DUET_PRODUCTION=1")
    SECRET_KEY = "duet-insecure-development-key-change-me-in-production"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# Where Duet keeps its runtime state on one machine: the SQLite file, the embedded broker's
# queue folders, uploaded media and the converted model cache.
VAR_DIR = Path(env_str("DUET_VAR_DIR", str(BASE_DIR / "var")))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "arena",
    "annotation",
    "routing",
    "training",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "arena.middleware.ContentSecurityPolicyMiddleware",
    "config.admin_links.AdminRequestMiddleware",
    "config.error_pages.SitePageNotFoundMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

# SQLite by default, PostgreSQL (or anything dj-database-url reads) through DATABASE_URL.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'duet.sqlite3'}"),
        # Connections live ten minutes, checked before reuse: a new PostgreSQL connection
        # costs a backend process and re-preparing the vote loop's statements.
        conn_max_age=600,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DUET_DB_PREPARED_STATEMENTS", True):
    # The vote loop's hand-written statements (arena/fastpath.py) are prepared once per
    # connection, so PostgreSQL stops parsing and planning them on every request. The
    # ORM's own queries bind on the client and are never prepared. Turn off behind a
    # pooler that cannot keep prepared statements (PgBouncer before 1.21, transaction mode).
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers proceed during a write; IMMEDIATE transactions take the write lock
    # up front so two writers queue on the busy timeout instead of failing with
    # "database is locked" when one upgrades a read lock.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Connections are kept (conn_max_age above) as on PostgreSQL: opening one and running
    # the PRAGMAs per request cost about half the vote loop's CPU (bench/load.py).

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "arena:arena"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# whitenoise serves straight from the app folders until `collectstatic` fills STATIC_ROOT.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Tuned models, exports and import uploads (arena/storage.py): one storage every host
# reaches. By default a folder (DUET_VAR_DIR itself, so exports stay in var/exports); on
# several hosts a shared folder, or an object store through a django-storages backend and
# its options (JSON).
STORAGE_DIR = Path(env_str("DUET_STORAGE_DIR", str(VAR_DIR)))
STORAGES["duet"] = {
    "BACKEND": env_str("DUET_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage"),
    "OPTIONS": env_json("DUET_STORAGE_OPTIONS", {}),
}
if STORAGES["duet"]["BACKEND"] == "django.core.files.storage.FileSystemStorage":
    STORAGES["duet"]["OPTIONS"].setdefault("location", str(STORAGE_DIR))

MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("DUET_MEDIA_ROOT", str(VAR_DIR / "media")))
# Duet serves uploaded media itself so the embedded setup needs nothing else; behind a
# proxy in production, turn this off and let the proxy serve MEDIA_ROOT.
SERVE_MEDIA = env_bool("DUET_SERVE_MEDIA", True)

# Uploads: whole request bodies and each media file are bounded.
MAX_UPLOAD_BYTES = env_number("DUET_MAX_UPLOAD_BYTES", 20 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes "not logged in" a 401, not a 403.
        "arena.api.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "arena.api.errors.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Duet API",
    "DESCRIPTION": "Pairwise human-preference data: arena, annotation, routing and training.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Celery -----------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_FOLDER = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_FOLDER / "queue"),
        "data_folder_out": str(CELERY_BROKER_FOLDER / "queue"),
        "processed_folder": str(CELERY_BROKER_FOLDER / "processed"),
        "store_processed": False,
        "control_folder": str(CELERY_BROKER_FOLDER / "control"),
        # The worker polls the queue folder; 0.2 s keeps a vote's leaderboard refresh
        # well inside the 2-second promise at negligible CPU.
        "polling_interval": 0.2,
    }
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "") or None
CELERY_TASK_DEFAULT_QUEUE = "default"
# Two lanes (config.celery.LANES; `make run` starts them): quick work, the board refresh on
# `default` and live-battle answers on `live`, has worker processes of its own, so a
# training run or a batch of demo outputs never holds up a vote's effect or a live battle.
CELERY_QUICK_QUEUES = ("default", "live")
CELERY_LONG_QUEUES = ("generation", "judging", "training", "export", "webhooks")
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name), routing_key=name) for name in CELERY_QUICK_QUEUES + CELERY_LONG_QUEUES
]
# Every task by name (tests/test_lanes.py checks none is left to the default by accident).
CELERY_TASK_ROUTES = {
    "arena.tasks.refresh_leaderboards": {"queue": "default"},
    "annotation.tasks.reclaim_expired_leases": {"queue": "default"},
    "arena.jobs.tasks.sweep_stale_jobs": {"queue": "default"},
    "arena.tasks.generate_live_turn": {"queue": "live"},
    "arena.tasks.generate_outputs": {"queue": "generation"},
    "arena.tasks.generate_all_missing": {"queue": "generation"},
    "arena.tasks.embed_prompts": {"queue": "generation"},
    "routing.tasks.run_judging_job": {"queue": "judging"},
    "routing.tasks.recalibrate_judge": {"queue": "judging"},
    "training.tasks.run_training": {"queue": "training"},
    "annotation.export_tasks.export_dataset_task": {"queue": "export"},
    "arena.webhooks.deliver_webhook": {"queue": "webhooks"},
    "arena.webhooks.sweep_deliveries": {"queue": "webhooks"},
    "annotation.import_tasks.import_comparisons_task": {"queue": "export"},
    "annotation.import_tasks.sweep_import_uploads": {"queue": "export"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A live-lane process loads the live models before it reports ready (config/celery.py):
# tens of seconds on a busy small machine, past Celery's default of 4 s.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 300.0
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The beat (the long lane's `-B`, config/celery.py's schedule) keeps its last-run times here.
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# Redis, for state every host must share (arena/sharedstate.py): the change stamps that
# invalidate each process's copies and the rate-limit counts. Empty: both live in the
# database, which is all one machine needs. Any redis:// or rediss:// URL; may be the
# broker's own server (another db number keeps them apart).
REDIS_URL = env_str("DUET_REDIS_URL", "")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"DUET_REDIS_URL must be a redis://, rediss:// or unix:// URL, got {REDIS_URL!r}")

# --- Duet -------------------------------------------------------------------------------
# Anonymous voters in the arena (session based). Off by default: voters log in.
OPEN_ARENA = env_bool("DUET_OPEN_ARENA", False)
# Each audio track must play this long before the vote buttons unlock (or to its end).
AUDIO_MIN_PLAY_SECONDS = env_number("DUET_AUDIO_MIN_PLAY_SECONDS", 5.0, float)
# How long a served comparison's vote token stays valid.
VOTE_TOKEN_MAX_AGE_SECONDS = env_number("DUET_VOTE_TOKEN_MAX_AGE", 6 * 3600)
# Leaderboards: the arena voters vote in, how boards are computed, and how soon after a
# vote the refresh runs (votes within this window share one refresh).
DEFAULT_ARENA = env_str("DUET_DEFAULT_ARENA", "main")
LEADERBOARD_DEBOUNCE_SECONDS = env_number("DUET_LEADERBOARD_DEBOUNCE", 0.5, float)
# The most of a worker's time refreshing boards may take under a steady stream of votes:
# the next refresh waits (1/share - 1) times the last one's duration after it (at most
# 20 s). 1: no pacing, the debounce alone.
LEADERBOARD_REFRESH_SHARE = env_number("DUET_LEADERBOARD_REFRESH_SHARE", 0.2, float)
if not 0 < LEADERBOARD_REFRESH_SHARE <= 1:
    raise ImproperlyConfigured(f"DUET_LEADERBOARD_REFRESH_SHARE must be in (0, 1], got {LEADERBOARD_REFRESH_SHARE}")
# Webhook deliveries (arena.webhooks): the POST's timeout, the wait before the first retry
# (doubling after each failure, capped at an hour), and the attempts before giving up.
WEBHOOK_TIMEOUT_SECONDS = env_number("DUET_WEBHOOK_TIMEOUT", 10.0, float)
WEBHOOK_BACKOFF_SECONDS = env_number("DUET_WEBHOOK_BACKOFF_SECONDS", 30.0, float)
WEBHOOK_MAX_ATTEMPTS = env_number("DUET_WEBHOOK_MAX_ATTEMPTS", 6)
LEADERBOARD_CI = env_str("DUET_LEADERBOARD_CI", "sandwich")
LEADERBOARD_BOOTSTRAP_ROUNDS = env_number("DUET_LEADERBOARD_ROUNDS", 200)
LEADERBOARD_MIN_VOTES = env_number("DUET_LEADERBOARD_MIN_VOTES", 20)
# Boards for prompts like one prompt (arena.similar): the sentence encoder (all-MiniLM-L6-v2
# from its PyPI package, or a local model folder), whether new prompts are embedded by the
# worker as they arrive, and the weighting's exponent: a battle weighs max(0, cos)^power.
PROMPT_EMBEDDING_MODEL = env_str("DUET_PROMPT_EMBEDDING_MODEL", "all-MiniLM-L6-v2")
PROMPT_EMBEDDINGS_ON_CREATE = env_bool("DUET_PROMPT_EMBEDDINGS_ON_CREATE", True)
SIMILAR_BOARD_POWER = env_number("DUET_SIMILAR_BOARD_POWER", 4.0, float)
# Categories a voter may tag a comparison with while voting (comma-separated), besides the
# categories of the arena's prompts; the tag decides the battle's category board.
ARENA_CATEGORIES = env_list("DUET_ARENA_CATEGORIES", [])
# Voters flagged for review (manage.py flag_outliers --mark, or the admin) stay off the
# boards, and out of exports unless an export asks for them, until their flag is cleared.
EXCLUDE_FLAGGED_VOTERS = env_bool("DUET_EXCLUDE_FLAGGED_VOTERS", True)
# How the arena picks the next pair of systems: "uniform" or "active" (most informative).
MATCHMAKING = env_str("DUET_MATCHMAKING", "active")
if MATCHMAKING not in ("uniform", "active"):
    raise ImproperlyConfigured(f"DUET_MATCHMAKING must be 'uniform' or 'active', got {MATCHMAKING!r}")
# Active matchmaking weighs pairs by the newest board; each web process reweighs at most
# this often (seconds), not on every refresh: under load the board refreshes every second
# or two and every process reweighing each time cost a sixth of the web's CPU per vote
# (bench/load.py). 0: on every new board.
MATCHMAKING_REWEIGH_SECONDS = env_number("DUET_MATCHMAKING_REWEIGH_SECONDS", 5.0, float)
# How long each web process trusts its copy of rarely changing rows on the vote path
# (tokens and roles, matchmaking index, rendered outputs, the board matchmaking reads)
# when nothing reports a change: see arena/hotcache.py. Changes made by Django processes
# on any host are reported through the change stamps (Redis, or the database), so this
# only bounds raw SQL and unreported .update()s. 0 reads everything on every request.
ARENA_CACHE_SECONDS = env_number("DUET_ARENA_CACHE_SECONDS", 60.0, float)
# How often a busy process reads the change stamps: a change made on another host (a
# revoked token, a deactivated system) shows within this, plus a request. 0: on every read.
ARENA_CACHE_CHECK_SECONDS = env_number("DUET_ARENA_CACHE_CHECK_SECONDS", 0.25, float)
# Live battles: voters' own prompts answered by two systems in the worker.
LIVE_GENERATION_TIMEOUT_SECONDS = env_number("DUET_LIVE_TIMEOUT", 120.0, float)
LIVE_MAX_CONCURRENT_PER_SYSTEM = env_number("DUET_LIVE_CONCURRENCY", 2)
LIVE_PROMPTS_PER_HOUR = env_number("DUET_LIVE_PROMPTS_PER_HOUR", 60)
LIVE_MAX_TURNS = env_number("DUET_LIVE_MAX_TURNS", 8)
LIVE_MAX_MESSAGE_CHARS = env_number("DUET_LIVE_MAX_MESSAGE_CHARS", 4000)
LIVE_OUTAGE_FAILURES = env_number("DUET_LIVE_OUTAGE_FAILURES", 3)
LIVE_OUTAGE_COOLDOWN_SECONDS = env_number("DUET_LIVE_OUTAGE_COOLDOWN", 300)
# Words that, in an answer, reveal who answered; added to each system's own name, provider
# and model family.
LEAK_WORDS = env_list("DUET_LEAK_WORDS", [])
# Prompt filter: refused words (comma-separated), regular expressions (separated by "||"),
# and an optional OpenAI-compatible moderation endpoint.
PROMPT_BLOCKLIST = env_list("DUET_PROMPT_BLOCKLIST", [])
PROMPT_BLOCK_PATTERNS = [p for p in env_str("DUET_PROMPT_BLOCK_PATTERNS", "").split("||") if p.strip()]
MODERATION_URL = env_str("DUET_MODERATION_URL", "")
MODERATION_API_KEY_ENV = env_str("DUET_MODERATION_API_KEY_ENV", "")
# Annotation: how long an annotator holds an item before it goes back to the queue, and
# the largest accepted import file and media zip.
ANNOTATION_LEASE_SECONDS = env_number("DUET_ANNOTATION_LEASE_SECONDS", 600)
ANNOTATION_IMPORT_MAX_BYTES = env_number("DUET_ANNOTATION_IMPORT_MAX_BYTES", 200 * 1024 * 1024)
ANNOTATION_MEDIA_ZIP_MAX_BYTES = env_number("DUET_ANNOTATION_MEDIA_ZIP_MAX_BYTES", 2 * 1024**3)
# Background exports and imports: the worker writes an export in a scratch folder of its
# own host, then stores each file in the storage above (exports/<job id>/<file>), where every
# host reads it. An import's upload is stored (imports/<uuid>) by the web process that took
# it, copied into the worker's scratch folder to be read, deleted once imported; a failed or
# cancelled import keeps it this many days for a retry (the beat's hourly sweep).
ANNOTATION_EXPORT_DIR = Path(env_str("DUET_ANNOTATION_EXPORT_DIR", str(VAR_DIR / "export-work")))
ANNOTATION_IMPORT_DIR = Path(env_str("DUET_ANNOTATION_IMPORT_DIR", str(VAR_DIR / "import-work")))
ANNOTATION_IMPORT_KEEP_DAYS = env_number("DUET_ANNOTATION_IMPORT_KEEP_DAYS", 7, float)
# Training runs: the default base model, where runs keep their data and models, and how
# long a running job may go without a heartbeat before it is declared dead.
TRAINING_DEFAULT_BASE = env_str("DUET_TRAINING_BASE", "smollm2-135m-instruct")
TRAINING_RUNS_DIR = Path(env_str("DUET_TRAINING_RUNS_DIR", str(VAR_DIR / "runs")))
TRAINING_HEARTBEAT_TIMEOUT_SECONDS = env_number("DUET_TRAINING_HEARTBEAT_TIMEOUT", 900)
# A running judging job or export whose worker wrote nothing for this long is failed by the
# beat's sweep (arena.jobs); judging batches and export chunks take seconds.
JOB_HEARTBEAT_TIMEOUT_SECONDS = env_number("DUET_JOB_HEARTBEAT_TIMEOUT", 900)
# Data-parallel processes per run on this worker (one per GPU on a GPU host); a run's recipe
# (model.processes) may set its own.
TRAINING_PROCESSES = env_number("DUET_TRAINING_PROCESSES", 1)
# The local model for transformers systems and judges, converted once from GGUF.
MODEL_CACHE_DIR = Path(env_str("DUET_MODEL_CACHE", str(VAR_DIR / "models")))
# The model behind the demo's text systems: the SmolLM2 name, or a local HF model folder.
DEMO_TEXT_MODEL = env_str("DUET_DEMO_TEXT_MODEL", "smollm2-135m-instruct")
# Generation defaults for transformers systems (a system's provider_config overrides them).
# 384: of the demo's SmolLM2 answers to its first 8 prompts (3 systems, seeded sampling),
# 12 of 24 ran past 160 tokens and 4 of 24 past 384.
GENERATION_MAX_NEW_TOKENS = env_number("DUET_GENERATION_MAX_NEW_TOKENS", 384)
GENERATION_BATCH_SIZE = env_number("DUET_GENERATION_BATCH_SIZE", 8)
# The local logit judge's arithmetic on a CPU: int8 (linear layers in int8, the rest as bf16),
# bf16, fp32 or auto; bad values are refused when a judge is built (routing.judges.local).
JUDGE_PRECISION = env_str("DUET_JUDGE_PRECISION", "int8")
# Timeout for calls to OpenAI-compatible endpoints.
OPENAI_TIMEOUT_SECONDS = env_number("DUET_OPENAI_TIMEOUT", 60.0, float)

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("DUET_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_number("DUET_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("DUET_LOG_LEVEL", "INFO")},
}

# --- Reliability and abuse limits -------------------------------------------------------
# Arena rate limits (see arena/ratelimit.py): N/second, N/minute, N/hour or N/day, or off.
# Per voter (an account, or a session in the open arena), for votes and for requests for
# a comparison; and per client address (hashed; IPv6 by /64) for both together, which is
# what holds an anonymous script that drops its cookies. 120 votes a minute is one every
# half second, faster than anyone reads two answers.
import re  # noqa: E402 - this block is appended to keep its edits in one place

VOTE_RATE_LIMIT = env_str("DUET_VOTE_RATE_LIMIT", "120/minute")
NEXT_RATE_LIMIT = env_str("DUET_NEXT_RATE_LIMIT", "240/minute")
CLIENT_RATE_LIMIT = env_str("DUET_CLIENT_RATE_LIMIT", "600/minute")
# A board for prompts like one embeds the query and fits on every vote of the arena (~0.1 s
# of CPU on 100,000 votes): a few a minute is all anyone reads.
SIMILAR_RATE_LIMIT = env_str("DUET_SIMILAR_RATE_LIMIT", "30/minute")
for _name, _rate in (("DUET_VOTE_RATE_LIMIT", VOTE_RATE_LIMIT), ("DUET_NEXT_RATE_LIMIT", NEXT_RATE_LIMIT),
                     ("DUET_CLIENT_RATE_LIMIT", CLIENT_RATE_LIMIT),
                     ("DUET_SIMILAR_RATE_LIMIT", SIMILAR_RATE_LIMIT)):  # fmt: skip
    if not re.fullmatch(r"\s*(off|none|0|\d+/(second|minute|hour|day))?\s*", _rate.lower()):
        raise ImproperlyConfigured(f"{_name} must be N/second, N/minute, N/hour, N/day or off, got {_rate!r}")
# Proxies in front of Duet that append to X-Forwarded-For; 0 trusts only the socket's
# address. Behind one reverse proxy set 1, or every voter shares the proxy's address.
TRUSTED_PROXY_HOPS = env_number("DUET_TRUSTED_PROXY_HOPS", 0)
# `check --deploy` must stay clean in production: the API reuses Duet's choice sets in
# several serializers, and without names for them drf-spectacular warns (W001) and
# numbers them (Modality456Enum). Belongs in SPECTACULAR_SETTINGS above.
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {
    "ModalityEnum": "arena.models.Modality",
    "VerdictEnum": "arena.models.Verdict",
    "JudgeKindEnum": "arena.models.JudgeKind",
    "RunKindEnum": "training.models.RunKind",
    "OutputKindEnum": ["text", "image", "audio"],
    "WebhookEventEnum": "arena.webhooks.EVENT_CHOICES",
}
