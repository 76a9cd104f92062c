"""Test settings: the base settings with fast hashing, in-memory email and eager tasks.

`DATABASE_URL` still selects the database, so CI runs the same suite on PostgreSQL.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "1")

from .base import *  # noqa: F403
from .base import VAR_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
FLOWBILL_EMBEDDED_RUNTIME = False
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = ""
REDIS_URL = ""
# One folder per pytest-xdist worker: parallel workers reuse the same ids and file names.
MEDIA_ROOT = VAR_DIR / "test-media" / os.environ.get("PYTEST_XDIST_WORKER", "main")
