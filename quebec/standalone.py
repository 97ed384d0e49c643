"""Quebec without a Django project: ``quebec.Quebec("sqlite:///demo.db")`` in a plain script.

When no settings are configured, a database URL configures a minimal Django for Quebec alone:
the database, the admin (for the dashboard) and the ``quebec`` app. Quebec's own settings then
come from ``Quebec(...)``'s keyword arguments and ``QUEBEC_*`` environment variables.
"""

import ipaddress
import logging
import os
import secrets
import socket
import warnings
from urllib.parse import parse_qsl, urlencode, urlsplit

from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger("quebec.dashboard")

# Query parameters the database drivers understand; others (sqlx's ``mode=rwc`` and the like,
# from URLs written for the original Quebec) are dropped.
DRIVER_PARAMETERS = {
    "sqlite": {"timeout"},
    "postgres": {
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "connect_timeout",
        "application_name",
        "options",
        "target_session_attrs",
    },
    "mysql": {"ssl", "ssl-ca", "charset", "connect_timeout", "init_command"},
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "quebec",
]


# Django's own checks, as a new project has them: they apply to QUEBEC_DASHBOARD_PASSWORD.
PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_ADDRESSES = ("0.0.0.0", "::")
_configured_here = False  # whether configure() set Django up (so its ALLOWED_HOSTS are ours)


def django_is_configured():
    from django.conf import settings

    return settings.configured or bool(os.environ.get("DJANGO_SETTINGS_MODULE"))


def database_settings(url):
    """Django's ``DATABASES`` entry for ``url``, as django-environ reads it, with two allowances for
    URLs written for the original Quebec: ``sqlite://demo.db`` (a file relative to the working
    directory) and query parameters no Python driver knows, which are ignored."""
    try:
        import environ
    except ImportError:
        raise ImproperlyConfigured(
            "Quebec(database URL) and python -m quebec read the URL with django-environ, which is not "
            "installed: pip install 'django-quebec[standalone]'"
        ) from None

    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    family = {
        "sqlite": "sqlite",
        "postgres": "postgres",
        "postgresql": "postgres",
        "pgsql": "postgres",
        "mysql": "mysql",
        "mariadb": "mysql",
    }.get(scheme)
    if family is None:
        raise ImproperlyConfigured(f"unsupported database URL {url!r}: use sqlite://, postgresql:// or mysql://")
    if family == "sqlite" and parts.netloc and parts.netloc != ":memory:":
        parts = parts._replace(netloc="", path=f"/{parts.netloc}{parts.path}")
    known = DRIVER_PARAMETERS[family]
    query = urlencode([(key, value) for key, value in parse_qsl(parts.query) if key in known])
    if scheme == "mariadb":
        parts = parts._replace(scheme="mysql")
    return environ.Env.db_url_config(_join(parts._replace(query=query)))


def _join(parts):
    """The URL of ``parts``, always with ``//`` after the scheme.

    Not ``urlunsplit``: older releases (3.12.1 among them) drop the ``//`` of a URL whose netloc
    is empty and whose path starts with ``//``, so ``sqlite:////var/q.db`` became
    ``sqlite://var/q.db``, a relative path.
    """
    query = f"?{parts.query}" if parts.query else ""
    fragment = f"#{parts.fragment}" if parts.fragment else ""
    return f"{parts.scheme}://{parts.netloc}{parts.path}{query}{fragment}"


def configure(url, quebec_settings):
    """Configure Django for Quebec alone, on the database at ``url``, and set it up."""
    import django
    from django.conf import settings

    if django_is_configured():
        raise ImproperlyConfigured(
            "Quebec(database URL) configures Django itself, but Django is already configured "
            f"(DJANGO_SETTINGS_MODULE={os.environ.get('DJANGO_SETTINGS_MODULE')!r}); inside a Django project, "
            "set DATABASES in its settings and pass the alias: Quebec(using='default')"
        )
    settings.configure(
        DEBUG=False,
        # Sessions of the dashboard's login; set QUEBEC_SECRET_KEY to keep them across restarts.
        SECRET_KEY=os.environ.get("QUEBEC_SECRET_KEY") or secrets.token_urlsafe(50),
        # The dashboard narrows this to the host it binds (see allow_hosts_for).
        ALLOWED_HOSTS=configured_hosts() or list(LOOPBACK_HOSTS),
        DATABASES={"default": database_settings(url)},
        INSTALLED_APPS=INSTALLED_APPS,
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        ROOT_URLCONF="quebec.standalone_urls",
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        STATIC_URL="/static/",
        AUTH_PASSWORD_VALIDATORS=PASSWORD_VALIDATORS,
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        QUEBEC=quebec_settings,
    )
    django.setup()
    global _configured_here
    _configured_here = True
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        # A SQLite file is the user's own scratch database: give it Quebec's tables at once, so
        # that jobs can be enqueued before run() (as the original Quebec's scripts do).
        from django.db import connection

        if "quebec_jobs" not in connection.introspection.table_names():
            create_tables()


def create_tables():
    """Create or update Quebec's tables (and the admin's) by running the migrations."""
    from django.core.management import call_command

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        call_command("migrate", interactive=False, verbosity=0)


def configured_hosts():
    """The hosts named by QUEBEC_ALLOWED_HOSTS (comma-separated), if any."""
    return [host.strip() for host in os.environ.get("QUEBEC_ALLOWED_HOSTS", "").split(",") if host.strip()]


def hosts_for(host):
    """The names a browser may use for a server bound to ``host``.

    A loopback address or ``localhost`` also answers to the other loopback names. A wildcard
    address (0.0.0.0, ::) answers on every interface: its names are this machine's host names
    and addresses, and the loopback names. Names a proxy or DNS gives it need QUEBEC_ALLOWED_HOSTS.
    """
    if host in WILDCARD_ADDRESSES:
        import psutil

        addresses = [
            address.address.split("%")[0]
            for entries in psutil.net_if_addrs().values()
            for address in entries
            if address.family in (socket.AF_INET, socket.AF_INET6)
        ]
        names = [*LOOPBACK_HOSTS, socket.gethostname(), socket.getfqdn(), *addresses]
    elif host == "localhost" or _is_loopback(host):
        names = [*LOOPBACK_HOSTS, host]
    else:
        names = [host]
    bracketed = [f"[{name}]" if ":" in name and not name.startswith("[") else name for name in names]
    return list(dict.fromkeys(bracketed))


def _is_loopback(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allow_hosts_for(host):
    """In standalone mode without QUEBEC_ALLOWED_HOSTS, accept only the names of the bound ``host``."""
    if not _configured_here or configured_hosts():
        return
    from django.conf import settings

    settings.ALLOWED_HOSTS = hosts_for(host)
    logger.info(
        "Dashboard accepts the hosts %s; set QUEBEC_ALLOWED_HOSTS for others", ", ".join(settings.ALLOWED_HOSTS)
    )


def ensure_dashboard_user():
    """Create or update the dashboard's superuser from QUEBEC_DASHBOARD_USER/_PASSWORD, if set.

    The password must pass the project's AUTH_PASSWORD_VALIDATORS (in standalone mode, Django's
    defaults); a weak one stops the start with the validators' messages.
    """
    username = os.environ.get("QUEBEC_DASHBOARD_USER")
    password = os.environ.get("QUEBEC_DASHBOARD_PASSWORD")
    if not username or not password:
        return None
    from django.contrib.auth import get_user_model
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    from quebec.conf import ConfigError

    user = get_user_model().objects.filter(username=username).first() or get_user_model()(username=username)
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise ConfigError(f"QUEBEC_DASHBOARD_PASSWORD is refused: {' '.join(error.messages)}") from None
    user.is_staff = user.is_superuser = user.is_active = True
    user.set_password(password)
    user.save()
    return user
