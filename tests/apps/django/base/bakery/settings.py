"""A tiny project in the shape of wagtail/bakerydemo's settings: .env loaded, the database from DATABASE_URL
through dj-database-url, django.contrib.postgres installed."""

import os
from pathlib import Path

import dj_database_url
from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env")

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = os.environ.get("DJANGO_DEBUG", "off") == "on"
ALLOWED_HOSTS: list[str] = []
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.postgres", "breads"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {"default": dj_database_url.config(conn_max_age=0)}
if DATABASES["default"].get("ENGINE") != "django.db.backends.postgresql":
    raise RuntimeError(f"DATABASE_URL must be a postgres:// URL, got engine {DATABASES['default'].get('ENGINE')!r}")
