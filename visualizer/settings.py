"""Settings, read from environment variables with safe defaults (see .env.example)."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from visualizer.lifeline import database_url

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("DATA_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {value!r}") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in DATA_DIR."""
    given = os.environ.get("SECRET_KEY")
    if given:
        return given
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
# The sites whose pages may show a player in a frame (?embed=1), as origins
# (https://course.example.org): sent as CSP frame-ancestors on embedded players. None by
# default: no site may frame any page.
EMBED_ALLOWED_ORIGINS = env_list("EMBED_ALLOWED_ORIGINS", "")
for _origin in EMBED_ALLOWED_ORIGINS:
    if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?", _origin):
        raise ImproperlyConfigured(
            f"EMBED_ALLOWED_ORIGINS: {_origin!r} is not an origin such as https://example.org"
        )
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
# The address students' devices reach this server at, for the class join card (the QR code
# and join URL); empty: the address the instructor's browser used. serve --class sets it.
CLASS_URL = os.environ.get("CLASS_URL", "").rstrip("/")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "visualizer.traces",
    "visualizer.scenarios",
    "visualizer.lab",
    "visualizer.classroom",
    "visualizer.learning",
    "visualizer.playground",
]

# Only middleware that runs natively in async mode (see visualizer/middleware.py): one
# built on MiddlewareMixin would hop to a worker thread around every scenario view.
MIDDLEWARE = [
    "visualizer.middleware.SecurityHeadersMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # An edited view's code over its size limit is refused before the CSRF check reads it.
    "visualizer.playground.middleware.EditedCodeBodyLimit",
    # Django's CSRF checks for every route's unsafe methods, called natively.
    "visualizer.csrf.CsrfMiddleware",
    "tracer.django_integration.TraceViewMiddleware",
]
# Plain text, built in memory: Django's page reads a template file on every refusal.
CSRF_FAILURE_VIEW = "visualizer.csrf.csrf_failure"

# "ui": the pages, WebSockets and archive, which start a "subject" process beside them to
# run the traced scenario views (visualizer/scenarios/subject.py).
ROLE = os.environ.get("VISUALIZER_ROLE", "") or "ui"
if ROLE not in ("ui", "subject"):
    raise ValueError(f"VISUALIZER_ROLE must be ui or subject, not {ROLE!r}")
ROOT_URLCONF = "visualizer.scenarios.subject_urls" if ROLE == "subject" else "visualizer.urls"
ASGI_APPLICATION = "visualizer.asgi.application"
WSGI_APPLICATION = "visualizer.wsgi.application"

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
                "visualizer.classroom.context_processors.classroom",
            ],
        },
    },
]


# DATABASE_URL, else SQLite in DATA_DIR.
DATABASES = {"default": dj_database_url.parse(database_url(os.environ), conn_max_age=0)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Traces are saved from a background thread while pages read them: let readers go on
    # during a write (WAL) and let writers wait for each other instead of failing.
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {
        # NORMAL: with WAL, a commit is safe from corruption without waiting for the disk.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

TRACER = {
    "ENABLED": env_bool("TRACING_ENABLED", True),
    "LOOP_BLOCK_THRESHOLD_MS": env_int("TRACER_LOOP_BLOCK_THRESHOLD_MS", 20),
    "BLOCKING_CALL_THRESHOLD_MS": env_int("TRACER_BLOCKING_CALL_THRESHOLD_MS", 10),
    # Set by the lab for WSGI runs with several worker processes.
    "PROCESS_TAG": env_bool("TRACE_PROCESS_TAG", False),
}
# Set by the lab for its gunicorn: every recording stored there is part of a run the UI
# process completes, and stays "recording" until it does (visualizer/traces/run_state.py).
TRACE_PARTIAL_RUNS = env_bool("TRACE_PARTIAL_RUNS", False)

# The scenarios' slow upstream service. Empty: the app starts one on a free loopback port.
UPSTREAM_URL = os.environ.get("UPSTREAM_URL", "")
# Largest trace file accepted for import, in bytes.
TRACE_IMPORT_MAX_BYTES = env_int("TRACE_IMPORT_MAX_BYTES", 10 * 1024 * 1024)
# The largest request body any page takes: a trace file with its form around it. A larger
# one is refused by its Content-Length before it is read (visualizer/request_limits.py).
UPLOAD_MAX_BYTES = TRACE_IMPORT_MAX_BYTES + 64 * 1024
# Django's own bounds on what it parses: the form fields besides files (a larger body is a
# 400; the largest field is the playground's edited code, 64 KB of text, which a form
# encodes in up to three times that: visualizer/playground/middleware.py), one file a
# request, and an upload over 2.5 MB streamed to a temporary file in chunks rather than
# held in memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = 1
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# Recordings made here and never named are pruned: only the newest TRACE_KEEP_RECORDINGS,
# none older than TRACE_KEEP_DAYS. Examples, imported and named traces are always kept.
TRACE_KEEP_RECORDINGS = env_int("TRACE_KEEP_RECORDINGS", 500)
TRACE_KEEP_DAYS = env_int("TRACE_KEEP_DAYS", 14)

# Believe X-Forwarded-For (the client's address) only behind a reverse proxy that sets it.
TRUST_PROXY_HEADERS = env_bool("TRUST_PROXY_HEADERS", False)

# What anonymous visitors may start at once (visualizer/limits.py): per visitor and in all,
# per server process. A visitor past a limit is told which, and nothing starts.
LIMIT_LAB_RUNS_PER_CLIENT = env_int("LIMIT_LAB_RUNS_PER_CLIENT", 1)
LIMIT_LAB_RUNS = env_int("LIMIT_LAB_RUNS", 3)
# Each WSGI lab run starts a gunicorn server (up to 8 worker processes) for itself.
LIMIT_WSGI_RUNS = env_int("LIMIT_WSGI_RUNS", 1)
LIMIT_LIVE_RUNS_PER_CLIENT = env_int("LIMIT_LIVE_RUNS_PER_CLIENT", 2)
LIMIT_LIVE_RUNS = env_int("LIMIT_LIVE_RUNS", 8)
LIMIT_IMPORTS_PER_MINUTE = env_int("LIMIT_IMPORTS_PER_MINUTE", 10)
# Imports being checked and stored at once, in all (one per visitor): a large file's JSON
# is parsed and checked in a thread of the UI process.
LIMIT_IMPORTS_AT_ONCE = env_int("LIMIT_IMPORTS_AT_ONCE", 2)
# Requests sent straight to a scenario's address (/run/<slug>/, e.g. with curl) in flight
# at once, per visitor and in all. The pages' own runs do not go through that address.
LIMIT_VIEW_REQUESTS_PER_CLIENT = env_int("LIMIT_VIEW_REQUESTS_PER_CLIENT", 4)
LIMIT_VIEW_REQUESTS = env_int("LIMIT_VIEW_REQUESTS", 32)
# A run's requests times the CPU work each asks for (async-cpu: 2,000,000 is about 20 s).
LIMIT_RUN_CPU_WORK = env_int("LIMIT_RUN_CPU_WORK", 4_000_000)
# Default I/O delay of the scenarios, in milliseconds (a request may ask for another).
SCENARIO_IO_DELAY_MS = env_int("SCENARIO_IO_DELAY_MS", 300)

# The playground (visualizer/playground/, docs/playground.md): where a visitor's edited view
# runs. "sandboxed": in bubblewrap, with no network, no files of this server and limits;
# "local": a child process with the same limits but not isolated, allowed only while the
# server listens on loopback only; "off". Empty: sandboxed when bubblewrap works here,
# else local on loopback, else off.
PLAYGROUND = os.environ.get("PLAYGROUND", "").strip().lower()
if PLAYGROUND not in ("", "off", "local", "sandboxed"):
    raise ValueError(f"PLAYGROUND must be off, local or sandboxed, not {PLAYGROUND!r}")
PLAYGROUND_BWRAP = os.environ.get("PLAYGROUND_BWRAP", "bwrap")
# The limits of one edited run: CPU seconds, wall-clock seconds, address space, the size of
# any one file it writes, its scratch folder in all, and its processes and threads.
PLAYGROUND_CPU_SECONDS = env_int("PLAYGROUND_CPU_SECONDS", 10)
PLAYGROUND_WALL_SECONDS = env_int("PLAYGROUND_WALL_SECONDS", 30)
PLAYGROUND_MEMORY_MB = env_int("PLAYGROUND_MEMORY_MB", 1024)
PLAYGROUND_FILE_MB = env_int("PLAYGROUND_FILE_MB", 16)
PLAYGROUND_SCRATCH_MB = env_int("PLAYGROUND_SCRATCH_MB", 32)
PLAYGROUND_THREADS = env_int("PLAYGROUND_THREADS", 128)
# Edited runs at once, per visitor and in all (each is a process of its own).
PLAYGROUND_RUNS_PER_CLIENT = env_int("PLAYGROUND_RUNS_PER_CLIENT", 1)
PLAYGROUND_RUNS = env_int("PLAYGROUND_RUNS", 2)
# Workers started ahead, set up and waiting for a run's code (each used once, then
# replaced): 0 starts each run's worker when it is asked for.
PLAYGROUND_WARM_WORKERS = env_int("PLAYGROUND_WARM_WORKERS", 1)
if not 0 <= PLAYGROUND_WARM_WORKERS <= 4:
    raise ValueError(f"PLAYGROUND_WARM_WORKERS must be from 0 to 4, not {PLAYGROUND_WARM_WORKERS}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
