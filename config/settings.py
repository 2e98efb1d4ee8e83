"""One settings module, read from the environment (django-environ).

With nothing set it runs locally: DEBUG on, SQLite in the project folder, emails on
the console. Production sets SECRET_KEY (which turns DEBUG off unless DEBUG is set),
ALLOWED_HOSTS and DATABASE_URL; the security flags then default to their strict values.
"""

import re
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def proxy_ssl_header(value: str) -> tuple[str, str] | None:
    """``SECURE_PROXY_SSL_HEADER`` from its environment variable, or None when it is unset.

    The value names the request header that a trusted proxy in front of the app always sets (and
    strips from what clients send): ``HTTP_X_FORWARDED_PROTO`` or ``X-Forwarded-Proto`` both give
    ``("HTTP_X_FORWARDED_PROTO", "https")``; ``HEADER,value`` picks another value (``X-Forwarded-Ssl,on``).
    Setting it without such a proxy would let any client claim HTTPS, hence no default.
    """
    value = value.strip()
    if value.lower() in ("", "0", "false", "no", "off", "none"):
        return None
    name, _, expected = value.partition(",")
    name = name.strip().upper().replace("-", "_")
    if not name.startswith("HTTP_"):
        name = f"HTTP_{name}"
    expected = expected.strip() or "https"
    if not re.fullmatch(r"HTTP_[A-Z0-9_]+", name) or "," in expected:
        raise ImproperlyConfigured(f"SECURE_PROXY_SSL_HEADER={value!r}: expected a header name such as "
                                   "HTTP_X_FORWARDED_PROTO, optionally followed by ',<value>'.")
    return name, expected


_DEV_SECRET = "django-insecure-local-development-only-never-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET)
# Local development is the default only while no real secret is configured.
DEBUG = env.bool("DEBUG", default=SECRET_KEY == _DEV_SECRET)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",  # allauth's passkey list uses it
    "django_htmx",
    "formtools",
    "csp",
    "guardian",
    "treebeard",
    "djstripe",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    "members",
    "accounts",
    "agency",
    "billing",
    "workspace",
    "security",
    "django_tasks",
    "django_tasks_db",
    "developers",
    "trust",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # allauth: the login flow's stages (second factor); ours: the session list's last activity.
    "allauth.account.middleware.AccountMiddleware",
    "security.middleware.SessionActivityMiddleware",
    # the URL's account's security policy: idle timeout, session lifetime, required second factor
    "security.middleware.AccountPolicyMiddleware",
    "members.preferences.PreferencesMiddleware",  # the person's time zone and date format
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
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
                "accounts.context_processors.current_account",
                "security.context_processors.policy_notice",
            ],
            # ``{% url %}`` reversing each pattern once for UUID arguments (accounts/templatetags/fast_url.py)
            "builtins": ["accounts.templatetags.fast_url", "accounts.templatetags.fast_extends"],
        },
    },
]

# Django's form renderer with its input, label, select and radio templates drawn in Python (config/form_renderer.py)
FORM_RENDERER = "config.form_renderer.FastWidgets"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions avoid "database is locked" when two requests write at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"transaction_mode": "IMMEDIATE", "timeout": 20})
else:
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's, with timestamps read by psycopg's compiled loader when both zones are UTC (config/postgresql)
        DATABASES["default"]["ENGINE"] = "config.postgresql"
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# PostgreSQL: the hot path's baked queries (accounts/baked.py) are prepared statements of each connection. Behind a
# pooler in transaction mode: PgBouncer 1.22+ with max_prepared_statements set, or off. Django's other queries
# always bind client-side.
BAKED_PREPARED_STATEMENTS = env.bool("BAKED_PREPARED_STATEMENTS", default=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
# API rate limits are counted here: shared by every worker process. The default is the database cache
# (table api_cache, created by migrate) outside DEBUG, process memory only for local runs and tests.
API_CACHE_ALIAS = "api"
CACHES[API_CACHE_ALIAS] = env.cache("API_CACHE_URL", default="locmemcache://api" if DEBUG else "dbcache://api_cache")

AUTH_USER_MODEL = "members.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
    # Object permissions on Account, inherited down the tree (rules 1 and 4 of DESIGN.md).
    "accounts.backends.AccountPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Sign-in through django-allauth (account, mfa, usersessions): rate-limited logins, email
# verification, TOTP, recovery codes, passkeys and the session list. Email is the login.
ACCOUNT_ADAPTER = "security.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "optional"
ACCOUNT_CHANGE_EMAIL = True  # a new address replaces the old one once it is verified
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_SESSION_REMEMBER = None  # the login form offers "Remember me"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Agency Console] "
ACCOUNT_REAUTHENTICATION_TIMEOUT = 300
# Failed sign-ins: per address (whether or not it belongs to anyone) and per client IP, over a
# sliding window; counters live in the default cache (shared: Redis in production, see CACHE_URL).
LOGIN_FAILURES_PER_EMAIL = env.int("LOGIN_FAILURES_PER_EMAIL", default=5)
LOGIN_FAILURES_PER_IP = env.int("LOGIN_FAILURES_PER_IP", default=20)
LOGIN_FAILURE_WINDOW_MINUTES = env.int("LOGIN_FAILURE_WINDOW_MINUTES", default=15)
ACCOUNT_RATE_LIMITS = {
    "login_failed": f"{LOGIN_FAILURES_PER_EMAIL}/{LOGIN_FAILURE_WINDOW_MINUTES}m/key",
    "login_failed_ip": f"{LOGIN_FAILURES_PER_IP}/{LOGIN_FAILURE_WINDOW_MINUTES}m/key",
}
MFA_ADAPTER = "security.adapters.MFAAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_RECOVERY_CODES_SHOW_ONCE = True  # shown (and downloadable) once, when made; regenerate if lost
MFA_TOTP_ISSUER = "Agency Console"
MFA_PASSKEY_LOGIN_ENABLED = False  # passkeys are a second factor here, after the password
# Passkeys need HTTPS except on localhost during development.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = env.bool("MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN", default=DEBUG)
ACCOUNT_FORMS = {"login": "security.forms.LoginForm"}
ACCOUNT_EMAIL_NOTIFICATIONS = True  # people are told by email when their password, email or factors change
# allauth's per-request activity tracking writes on every request; security.middleware does it every 5 minutes.
USERSESSIONS_TRACK_ACTIVITY = False
SESSION_ACTIVITY_INTERVAL_SECONDS = 300
# A session notes its own last activity at most this often (an account's idle timeout is measured from it).
SESSION_IDLE_RESOLUTION_SECONDS = 60
# How long login activity is kept and shown (days).
SECURITY_ACTIVITY_DAYS = 90

# django-guardian: no anonymous user row (nothing here is granted to anonymous visitors).
ANONYMOUS_USER_NAME = None
GUARDIAN_MONKEY_PATCH_USER = False
GUARDIAN_MONKEY_PATCH_GROUP = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Serve straight from the app folders when collectstatic has not run (local runs, tests).
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=DEBUG)
WHITENOISE_MANIFEST_STRICT = False

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Agency Console <no-reply@agency-console.local>")

# Security: strict unless running locally.
# Trust a forwarded-protocol header only when a proxy in front of the app is known to set it.
if _proxy_ssl_header := proxy_ssl_header(env.str("SECURE_PROXY_SSL_HEADER", default="")):
    SECURE_PROXY_SSL_HEADER = _proxy_ssl_header
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp 4): no inline script or style, nothing from other origins.
# Page JavaScript lives in static/js/, htmx in static/vendor/ (configured in base.html not to inject
# its indicator <style>, and not to eval). Stripe Checkout is reached by a redirect after a POST,
# which form-action governs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF, "https://checkout.stripe.com"],
        "frame-ancestors": [NONE],
    },
}

# The product's own knobs.
ACCOUNT_MAX_DEPTH = env.int("ACCOUNT_MAX_DEPTH", default=5)  # root = level 1
SWITCHER_PAGE_SIZE = 50
# Absolute links in emails sent outside a request (commands); requests use their own host.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")
INVITATION_MAX_AGE_DAYS = env.int("INVITATION_MAX_AGE_DAYS", default=7)
BILLING_TRANSFER_MAX_AGE_DAYS = env.int("BILLING_TRANSFER_MAX_AGE_DAYS", default=14)
# How often "last active" is written for a membership (one UPDATE at most per interval).
MEMBERSHIP_ACTIVITY_INTERVAL_SECONDS = 300

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

SILENCED_SYSTEM_CHECKS = [
    # Object permissions are answered by accounts.backends.AccountPermissionBackend, which adds
    # inheritance down the account tree to django-guardian's rows; guardian's own backend would not.
    "guardian.W001",
]

# Stripe through dj-stripe. With no key, billing runs locally (statements computed here).
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_LIVE_MODE = STRIPE_SECRET_KEY.startswith("sk_live_")
STRIPE_TEST_SECRET_KEY = "" if STRIPE_LIVE_MODE else STRIPE_SECRET_KEY
STRIPE_LIVE_SECRET_KEY = STRIPE_SECRET_KEY if STRIPE_LIVE_MODE else ""
STRIPE_CURRENCY = env.str("STRIPE_CURRENCY", default="usd")
if env.str("STRIPE_API_HOST", default=""):
    STRIPE_API_HOST = env.str("STRIPE_API_HOST")  # a local fake Stripe in tests; never set in production
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_SUBSCRIBER_MODEL = "accounts.Account"
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"

# REST API v1 (djangorestframework): API keys only (X-API-Key), JSON only, one error body, rate limit per key.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["developers.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "api.schema.ApiAutoSchema",
    "UNAUTHENTICATED_USER": None,
}
API_RATE_LIMIT = env.str("API_RATE_LIMIT", default="600/min")
SPECTACULAR_SETTINGS = {
    "TITLE": "Agency Console API",
    "DESCRIPTION": "Accounts, subaccounts, members, agents, contacts, conversations, usage and invoices. "
                   "Authenticate with an account-scoped API key in the X-API-Key header.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",  # vendored assets (drf-spectacular-sidecar), nothing from a CDN
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "LevelEnum": ["none", "read", "full"],
        "ReadLevelEnum": ["none", "read"],
        "RoleEnum": "members.roles.RoleId",
        "InvitableRoleEnum": ["owner", "admin", "member", "viewer"],
    },
}

# Background work (webhook deliveries): Django's tasks API through django-tasks, with its database backend;
# `manage.py db_worker` runs it (`make run` starts one).
TASKS = {"default": {"BACKEND": env.str("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend")}}
# Webhooks to private, loopback or link-local addresses (and plain http) only while developing locally.
WEBHOOK_ALLOW_PRIVATE_URLS = env.bool("WEBHOOK_ALLOW_PRIVATE_URLS", default=DEBUG)

# Trust Center. The retention purge works in batches of this many rows (one transaction each, resumable);
# `manage.py run_daily` (cron, or the loop `make run` starts) enqueues it once a day, from this hour (UTC).
RETENTION_PURGE_BATCH_SIZE = env.int("RETENTION_PURGE_BATCH_SIZE", default=1000)
RETENTION_PURGE_HOUR_UTC = env.int("RETENTION_PURGE_HOUR_UTC", default=3)
# A public trust page's old address keeps redirecting (and stays reserved) this long after a change of slug.
TRUST_SLUG_GRACE_DAYS = env.int("TRUST_SLUG_GRACE_DAYS", default=30)
# How long a rendered public trust page is kept in the default cache (it is also dropped on every change).
TRUST_PAGE_CACHE_SECONDS = env.int("TRUST_PAGE_CACHE_SECONDS", default=300)
