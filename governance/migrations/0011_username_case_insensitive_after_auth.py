"""The case-insensitive username index again, after every migration of ``auth``.

0007 depended only on ``auth``'s first migration, so on SQLite a later ``auth`` migration that
alters ``auth_user`` (SQLite rebuilds the table for it) could run after 0007 and drop the index
with the old table: the database then took "CAROL" beside "carol". ``IF NOT EXISTS`` keeps an
index that survived (always, on PostgreSQL).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0010_version_source_reference"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE UNIQUE INDEX IF NOT EXISTS governance_username_ci_uniq ON auth_user (UPPER(username))",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
