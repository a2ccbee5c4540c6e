"""Usernames are unique regardless of case: a functional unique index on auth_user.

Django's User model is not ours to change, so the index is created here with SQL that both
PostgreSQL and SQLite understand. The service checks first (with a clear message); the index
settles the race between two concurrent creations.
"""

from django.conf import settings
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0006_source_fingerprint"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE UNIQUE INDEX governance_username_ci_uniq ON auth_user (UPPER(username))",
            reverse_sql="DROP INDEX governance_username_ci_uniq",
        ),
    ]
