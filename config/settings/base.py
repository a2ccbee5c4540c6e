"""Settings shared by every environment; only this package reads the environment."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent

# Where dataset versions, holdouts, models and signed PDFs live. The embedded default
# keeps everything (including the SQLite database) under one directory.
DATA_DIR = Path(env_str("SYNTHGATE_DATA_DIR") or (BASE_DIR / "var")).resolve()
# Where dataset versions (sources, training rows, holdouts, synthetic outputs) are kept: any fsspec
# URL (e.g. s3://bucket/synthgate with s3fs installed); empty is DATA_DIR (governance/storage.py).
SYNTHGATE_STORAGE_URL = env_str("SYNTHGATE_STORAGE_URL") or ""

SECRET_KEY = env_str("SECRET_KEY") or "insecure-local-development-key-do-not-use-in-production"
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "axes",
    "csp",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "core",
    "governance",
    "synth_engine",
    "audits",
    "dashboard",
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
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    # Last, as django-axes asks: turns a lockout flagged during login into the 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

# DATABASE_URL unset: a SQLite file in the data directory (the embedded default).
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'synthgate.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait for the writer instead of failing at once; SQLite serialises writers.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env_int("SYNTHGATE_PASSWORD_MIN_LENGTH", 10)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Failed logins (dashboard and POST /api/auth/token/) are counted per account and per client
# address by django-axes; at the limit both are locked for the cool-off, answered 429.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "governance.logins.NormalisedUsernameBackend",
]
AXES_FAILURE_LIMIT = env_int("SYNTHGATE_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("SYNTHGATE_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "governance.logins.login_username"
AXES_LOCKOUT_CALLABLE = "governance.logins.login_lockout_response"
AXES_VERBOSE = False

# API tokens (django-rest-knox): stored as SHA-512 digests, each with an expiry; listed,
# rotated and revoked from the CLI (`synthgate token`) and the API (/api/auth/tokens/).
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=env_int("SYNTHGATE_TOKEN_TTL_DAYS", 30)),
    "AUTH_HEADER_PREFIX": "Token",
    "TOKEN_PREFIX": "sg_",
    "AUTO_REFRESH": False,
}
SYNTHGATE_MAX_TOKENS_PER_USER = env_int("SYNTHGATE_MAX_TOKENS_PER_USER", 20)

# Security headers. The dashboard has no inline script or style: everything comes from 'self'.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
}
# The OpenAPI schema and its docs page: open in development, login required in production.
SYNTHGATE_API_SCHEMA_PUBLIC = env_bool("SYNTHGATE_API_SCHEMA_PUBLIC", True)

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGIN_URL = "/accounts/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "core.api.DefaultPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "VIEW_NAME_FUNCTION": "core.api.view_name",
    "DEFAULT_PARSER_CLASSES": [
        "core.limits.LimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # One time format for machines: core.times.ISO_FORMAT (UTC, to the second, with a Z).
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%SZ",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Synthgate API",
    "DESCRIPTION": "Governance and audit of privacy-preserving synthetic tabular data.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["core.apis.ApiSchemaAccess"],
    # Swagger UI from the pinned sidecar package's static files: works offline and under the CSP.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery: CELERY_BROKER_URL unset means tasks run in-process (eager).
CELERY_TASK_ALWAYS_EAGER = env_str("CELERY_BROKER_URL") is None
# In-process tasks never reach a broker; "memory://localhost/" keeps Celery from looking for one
# (and, naming a host, from warning "No hostname was supplied" on every job).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Longer than the longest job, so Redis does not redeliver a task still being worked on.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_SECONDS", 6 * 3600)}
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE") or "celery"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# Liveness of jobs and audit runs: a worker writes a heartbeat every SYNTHGATE_HEARTBEAT_SECONDS
# (0 = off; off by default for in-process tasks); the beat-scheduled reaper, every
# SYNTHGATE_REAPER_TICK_SECONDS, ends any running one whose heartbeat is older than
# SYNTHGATE_HEARTBEAT_TIMEOUT_SECONDS. A job that lost its database connection before it touched
# the data is retried up to SYNTHGATE_JOB_RETRIES times, waiting SYNTHGATE_JOB_RETRY_BACKOFF_SECONDS
# doubled each time; a worker waits up to SYNTHGATE_DB_RECONNECT_SECONDS for the database to return.
SYNTHGATE_HEARTBEAT_SECONDS = env_int("SYNTHGATE_HEARTBEAT_SECONDS", 0 if CELERY_TASK_ALWAYS_EAGER else 15)
SYNTHGATE_HEARTBEAT_TIMEOUT_SECONDS = env_int("SYNTHGATE_HEARTBEAT_TIMEOUT_SECONDS", 180)
SYNTHGATE_REAPER_TICK_SECONDS = env_int("SYNTHGATE_REAPER_TICK_SECONDS", 60)
SYNTHGATE_JOB_RETRIES = env_int("SYNTHGATE_JOB_RETRIES", 3)
SYNTHGATE_JOB_RETRY_BACKOFF_SECONDS = env_int("SYNTHGATE_JOB_RETRY_BACKOFF_SECONDS", 5)
SYNTHGATE_DB_RECONNECT_SECONDS = env_int("SYNTHGATE_DB_RECONNECT_SECONDS", 60)
# Publishing a task: how many times to retry while the broker is unreachable before the start
# is refused (the job ends failed, nothing is spent, the request goes back to approved).
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": env_int("SYNTHGATE_PUBLISH_RETRIES", 3),
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}

# The database role split (docs/tamper-evidence.md): when set, `synthgate init` (run as the owner
# role) grants this role INSERT and SELECT only on the audit log and the ledger.
SYNTHGATE_DB_APP_ROLE = env_str("SYNTHGATE_DB_APP_ROLE")
# Signed checkpoints of the audit log's head: appended to this file when it is set; otherwise, with
# SYNTHGATE_STORAGE_URL set, each is its own object under audit-log/checkpoints/ there (workers on
# several hosts); otherwise DATA_DIR/audit-log/checkpoints.jsonl (docs/tamper-evidence.md).
SYNTHGATE_CHECKPOINT_PATH = env_str("SYNTHGATE_CHECKPOINT_PATH")
# This host's name in the keys of the checkpoints it writes (default: the machine's host name).
SYNTHGATE_HOST_NAME = env_str("SYNTHGATE_HOST_NAME")
# Optional RFC 3161 timestamps of those checkpoints: the TSA's URL, the PEM file of the TSA
# certificate(s) its tokens must chain to, and the request timeout in seconds.
SYNTHGATE_TSA_URL = env_str("SYNTHGATE_TSA_URL")
SYNTHGATE_TSA_CERTIFICATES = env_str("SYNTHGATE_TSA_CERTIFICATES")
SYNTHGATE_TSA_TIMEOUT = env_int("SYNTHGATE_TSA_TIMEOUT", 10)

# With no broker, the dashboard runs a generation job in a background thread of the web process
# so the page returns at once; tests that need the job finished switch it off.
SYNTHGATE_DASHBOARD_BACKGROUND_JOBS = env_bool("SYNTHGATE_DASHBOARD_BACKGROUND_JOBS", CELERY_TASK_ALWAYS_EAGER)

# The CLI's acting user when --as is absent: SYNTHGATE_USER, else `user = "NAME"` in this file.
SYNTHGATE_USER = env_str("SYNTHGATE_USER") or None
SYNTHGATE_CLI_CONFIG = env_str("SYNTHGATE_CONFIG") or str(
    Path(env_str("XDG_CONFIG_HOME") or Path.home() / ".config") / "synthgate" / "config.toml"
)

# The demo installation (`scripts/serve.sh` on the demo database): the login page names the
# demo people. Anywhere else it names nobody.
SYNTHGATE_DEMO = env_bool("SYNTHGATE_DEMO", False)

# Upload limits: the raw file, and for compressed uploads the expanded size and ratio.
SYNTHGATE_MAX_UPLOAD_BYTES = env_int("SYNTHGATE_MAX_UPLOAD_BYTES", 512 * 1024 * 1024)
SYNTHGATE_MAX_EXPANDED_BYTES = env_int("SYNTHGATE_MAX_EXPANDED_BYTES", 2 * 1024 * 1024 * 1024)
SYNTHGATE_MAX_COMPRESSION_RATIO = env_int("SYNTHGATE_MAX_COMPRESSION_RATIO", 200)

# Row fingerprints (one budget per population): the secret keying each row's hash, and the
# share of distinct rows two source tables may have in common before the second registration
# is refused (see docs/datasets.md). The key defaults to one derived from SECRET_KEY; changing
# it makes Synthgate recompute stored fingerprints from the stored tables.
SYNTHGATE_FINGERPRINT_KEY = env_str("SYNTHGATE_FINGERPRINT_KEY") or f"row-fingerprint:{SECRET_KEY}"
SYNTHGATE_ROW_OVERLAP_THRESHOLD = env_float("SYNTHGATE_ROW_OVERLAP_THRESHOLD", 0.05)
# Budget caps above this ε (or a δ cap of 1/n or more) need an explicit, logged override.
SYNTHGATE_MAX_PLAUSIBLE_EPSILON_CAP = env_float("SYNTHGATE_MAX_PLAUSIBLE_EPSILON_CAP", 20.0)
# ε (δ = 0) of a source version's DP row estimate, charged once per version to its dataset's
# ledger: the request outlook and filing's refusals are computed from it (docs/generators.md).
SYNTHGATE_ROW_ESTIMATE_EPSILON = env_float("SYNTHGATE_ROW_ESTIMATE_EPSILON", 0.02)

# Largest synthetic table a request may ask for.
SYNTHGATE_MAX_ROWS = env_int("SYNTHGATE_MAX_ROWS", 10_000_000)

# Source databases a dataset version may reference instead of an upload (docs/engines.md):
# whitespace-separated NAME=URL pairs, e.g. "warehouse=postgres://reader:secret@db:5432/clinic".
# Only the NAME is ever stored, logged or shown; the URL (with its credentials) stays here.
SYNTHGATE_SOURCE_DATABASES = dict(
    item.split("=", 1) for item in (env_str("SYNTHGATE_SOURCE_DATABASES") or "").split() if "=" in item
)
# Directories under which Parquet files may be registered by reference and read by DuckDB
# (docs/engines.md): absolute paths separated by ":" (os.pathsep). A path outside every root
# (after resolving symbolic links) is refused; none configured refuses every Parquet source.
SYNTHGATE_SOURCE_PARQUET_ROOTS = [
    str(Path(item).resolve()) for item in (env_str("SYNTHGATE_SOURCE_PARQUET_ROOTS") or "").split(":") if item
]
# Parquet sources on S3 (or an S3-compatible store such as MinIO), read by DuckDB through s3fs: the
# prefixes objects may be registered from (whitespace-separated s3://bucket/prefix; none configured
# refuses every s3:// source), and the endpoint, keys and region to read them with (unset: the
# standard AWS chain, AWS_* variables or an instance role). The keys are never stored, logged or shown.


def _s3_root(item: str) -> str:
    """``s3://bucket/prefix`` with empty segments dropped; anything else is a configuration error."""
    segments = [part for part in item[len("s3://") :].split("/") if part] if item.startswith("s3://") else []
    if not segments or any(part in {".", ".."} for part in segments):
        raise ImproperlyConfigured(f"SYNTHGATE_SOURCE_S3_ROOTS: {item!r} is not of the form s3://bucket/prefix.")
    return "s3://" + "/".join(segments)


SYNTHGATE_SOURCE_S3_ROOTS = [_s3_root(item) for item in (env_str("SYNTHGATE_SOURCE_S3_ROOTS") or "").split()]
SYNTHGATE_SOURCE_S3_ENDPOINT_URL = env_str("SYNTHGATE_SOURCE_S3_ENDPOINT_URL") or ""
SYNTHGATE_SOURCE_S3_ACCESS_KEY_ID = env_str("SYNTHGATE_SOURCE_S3_ACCESS_KEY_ID") or ""
SYNTHGATE_SOURCE_S3_SECRET_ACCESS_KEY = env_str("SYNTHGATE_SOURCE_S3_SECRET_ACCESS_KEY") or ""
SYNTHGATE_SOURCE_S3_REGION = env_str("SYNTHGATE_SOURCE_S3_REGION") or ""
# DuckDB's memory in the worker while it counts a Parquet source; beyond it, it spills to the
# directory below (default DATA_DIR/duckdb), so a lake may be larger than memory.
SYNTHGATE_DUCKDB_MEMORY_LIMIT = env_str("SYNTHGATE_DUCKDB_MEMORY_LIMIT") or "1GB"
SYNTHGATE_DUCKDB_TEMP_DIRECTORY = env_str("SYNTHGATE_DUCKDB_TEMP_DIRECTORY") or ""
# Apache Spark for Parquet sources registered with engine "spark" (docs/engines.md): the master a
# worker's session connects to ("local[N]" runs Spark inside the worker; "spark://host:7077", "yarn"
# or "k8s://…" a cluster, whose executors must see the Parquet path at the same place), and how
# long a session may take to start (and be granted executors) before the job fails with the reason.
SYNTHGATE_SPARK_MASTER = env_str("SYNTHGATE_SPARK_MASTER") or "local[2]"
SYNTHGATE_SPARK_START_TIMEOUT = env_float("SYNTHGATE_SPARK_START_TIMEOUT", 120.0)
# What bounds the memory of the worker's session (docs/engines.md, "The session"), read when the
# worker's JVM is launched: the JVM's heap (spark.driver.memory; local mode's executors run in it, so
# it must hold 450 MB or more), more options of that JVM (the collector: serial by default; e.g.
# "-XX:+UseG1GC" for the JVM's own), the rows of an Arrow batch handed to the executors' Python
# workers, and glibc's MALLOC_ARENA_MAX for the JVM and the executors (0: glibc's default). Together
# 1.6-1.7 GB at most for the JVM and its workers at 10 M rows x 50 columns in local[2], about 2 GB before.
SYNTHGATE_SPARK_DRIVER_MEMORY = env_str("SYNTHGATE_SPARK_DRIVER_MEMORY") or "512m"
SYNTHGATE_SPARK_JAVA_OPTIONS = env_str("SYNTHGATE_SPARK_JAVA_OPTIONS") or "-XX:+UseSerialGC"
SYNTHGATE_SPARK_ARROW_BATCH_ROWS = env_int("SYNTHGATE_SPARK_ARROW_BATCH_ROWS", 32_768)
SYNTHGATE_SPARK_MALLOC_ARENA_MAX = env_int("SYNTHGATE_SPARK_MALLOC_ARENA_MAX", 2)
# Spark catalog databases whose tables may be registered by name with engine "spark" (whitespace-
# separated, e.g. "clinic spark_catalog.claims"; a table is database.table); none configured refuses
# every table name.
SYNTHGATE_SOURCE_SPARK_DATABASES = (env_str("SYNTHGATE_SOURCE_SPARK_DATABASES") or "").split()
# Each query of a started session (a check, a counting pass, the checksum, a sample; for the rows
# streamed to the fingerprint, the wait for the next row) is cancelled after this many seconds and
# fails the job with the reason: a cluster that lost its executors mid-count would otherwise hold
# the job until the heartbeat reaper. 0: no bound.
SYNTHGATE_SPARK_QUERY_TIMEOUT = env_float("SYNTHGATE_SPARK_QUERY_TIMEOUT", 1800.0)
# The audit runs on a random sample of at most this many training rows and as many holdout rows:
# fetched at job time for a referenced table (the counts for the fit cover every row), drawn with
# the run's seed from a larger uploaded split (audits.services.runs._audit_samples).
SYNTHGATE_REFERENCE_AUDIT_ROWS = env_int("SYNTHGATE_REFERENCE_AUDIT_ROWS", 20_000)
# A synthetic (or external) table above this many rows is audited on a uniform random sample of
# this many of its rows (the run's seed), read from the stored file as a stream; the size is stated
# in the internal report. Below it the table is audited whole.
SYNTHGATE_AUDIT_SYNTHETIC_ROWS = env_int("SYNTHGATE_AUDIT_SYNTHETIC_ROWS", 1_000_000)
# A drift re-audit's snapshot of a referenced table (check, checksum, sample) waits at most this
# long for each statement and each lock: a table its loader holds fails the re-audit, never hangs it.
SYNTHGATE_REFERENCE_SNAPSHOT_TIMEOUT_SECONDS = env_int("SYNTHGATE_REFERENCE_SNAPSHOT_TIMEOUT_SECONDS", 600)
# A job samples its synthetic table in chunks of this many rows, each written (and hashed) while
# the next are drawn: the worker's memory is bounded by a few chunks, not by the requested size.
SYNTHGATE_SAMPLE_CHUNK_ROWS = env_int("SYNTHGATE_SAMPLE_CHUNK_ROWS", 100_000)
# Chunks a job draws at once (threads) while it writes the one before them, when its generator's
# draws allow it (``Generator.independent_draws``: mst); the same rows for any number, and at most
# this many chunks plus one in the worker's memory (synth_engine.streaming.drawn_chunks).
SYNTHGATE_SAMPLE_DRAW_THREADS = env_int("SYNTHGATE_SAMPLE_DRAW_THREADS", 2)
# The dashboard's column profiles of a version above this many rows are computed from a uniform
# random sample of this many rows (seeded by the version's hash), and say so (dashboard/profiles.py).
SYNTHGATE_PROFILE_SAMPLE_ROWS = env_int("SYNTHGATE_PROFILE_SAMPLE_ROWS", 50_000)

# Bounded work for every input (issue 12 §4): each limit answers a 4xx naming the limit.
# Columns per uploaded table (schema inference costs ~0.6 ms per column per row batch).
SYNTHGATE_MAX_COLUMNS = env_int("SYNTHGATE_MAX_COLUMNS", 1000)
# Characters in one cell of an uploaded table.
SYNTHGATE_MAX_CELL_CHARS = env_int("SYNTHGATE_MAX_CELL_CHARS", 4096)
# Characters in a free-text field (justification, reasons, descriptions, recipient).
SYNTHGATE_MAX_TEXT_CHARS = env_int("SYNTHGATE_MAX_TEXT_CHARS", 10_000)
# A JSON request body: bytes read before parsing, and nesting depth.
SYNTHGATE_MAX_JSON_BYTES = env_int("SYNTHGATE_MAX_JSON_BYTES", 1024 * 1024)
SYNTHGATE_MAX_JSON_DEPTH = env_int("SYNTHGATE_MAX_JSON_DEPTH", 32)
# Longest period a compliance report may cover, in days.
SYNTHGATE_MAX_REPORT_DAYS = env_int("SYNTHGATE_MAX_REPORT_DAYS", 3660)
# A PDF sent to `datasheet verify` (anyone may call it): read in chunks and refused past this.
SYNTHGATE_MAX_VERIFY_BYTES = env_int("SYNTHGATE_MAX_VERIFY_BYTES", 20 * 1024 * 1024)

# Datasheet signing: the platform key and certificate (generated by `synthgate init` under
# DATA_DIR/signing when none is configured), or an organisation's own PEM pair or PKCS#12 file.
SYNTHGATE_SIGNING_KEY_PATH = env_str("SYNTHGATE_SIGNING_KEY_PATH")
SYNTHGATE_SIGNING_CERT_PATH = env_str("SYNTHGATE_SIGNING_CERT_PATH")
SYNTHGATE_SIGNING_PKCS12_PATH = env_str("SYNTHGATE_SIGNING_PKCS12_PATH")
SYNTHGATE_SIGNING_PASSPHRASE = env_str("SYNTHGATE_SIGNING_PASSPHRASE")
# Further certificates (PEM) whose signatures `datasheet verify` trusts, e.g. an earlier key.
SYNTHGATE_TRUSTED_CERTS_PATH = env_str("SYNTHGATE_TRUSTED_CERTS_PATH")
SYNTHGATE_ORGANISATION = env_str("SYNTHGATE_ORGANISATION") or "Synthgate"
# Audits run after every generation job; a fixed seed makes runs repeatable.
SYNTHGATE_AUDIT_TARGETS = env_int("SYNTHGATE_AUDIT_TARGETS", 2000)
# Threads for the audit's nearest-neighbour searches; 0 = every core the worker may use.
SYNTHGATE_AUDIT_THREADS = env_int("SYNTHGATE_AUDIT_THREADS", 0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL") or "WARNING"},
    # The AWS clients (artefact storage, Parquet sources on S3) print every request's headers, the
    # access key's id among them, at DEBUG: never below INFO, even with LOG_LEVEL=DEBUG.
    "loggers": {name: {"level": "INFO"} for name in ("botocore", "aiobotocore", "boto3", "s3transfer")},
}

# Email (drift notices to stewards and requesters). Console by default; tests use locmem.
EMAIL_BACKEND = env_str("EMAIL_BACKEND") or "django.core.mail.backends.console.EmailBackend"
EMAIL_HOST = env_str("EMAIL_HOST") or "localhost"
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL") or "synthgate@localhost"
# Scheduled drift audits: beat ticks every SYNTHGATE_DRIFT_TICK_MINUTES; each dataset is re-audited
# when its own interval (DriftSchedule, default SYNTHGATE_DRIFT_INTERVAL_HOURS) has passed.
SYNTHGATE_DRIFT_TICK_MINUTES = env_int("SYNTHGATE_DRIFT_TICK_MINUTES", 60)
SYNTHGATE_DRIFT_INTERVAL_HOURS = env_int("SYNTHGATE_DRIFT_INTERVAL_HOURS", 24)
