"""Release and Download move from governance to audits: state only, their tables stay as they are.

governance/0009 removes them from governance's state once this migration has added them here and
pointed the release datasheet and drift runs at the moved model.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("audits", "0004_release_datasheet"),
        ("governance", "0008_request_client_token"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    state_operations = [
        migrations.CreateModel(
            name="Release",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("expires_at", models.DateTimeField()),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                ("revoke_reason", models.TextField(blank=True)),
                (
                    "stale_at",
                    models.DateTimeField(blank=True, help_text="set when a drift audit finds it stale", null=True),
                ),
                (
                    "audit_run",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="releases", to="audits.auditrun"
                    ),
                ),
                (
                    "datasheet",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="releases", to="audits.datasheet"
                    ),
                ),
                (
                    "released_by",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL
                    ),
                ),
                (
                    "request",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="release",
                        to="governance.datarequest",
                    ),
                ),
                (
                    "revoked_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "version",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="releases",
                        to="governance.datasetversion",
                    ),
                ),
            ],
            options={"db_table": "governance_release", "ordering": ["-created_at", "-id"]},
        ),
        migrations.CreateModel(
            name="Download",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("kind", models.CharField(choices=[("data", "Data"), ("datasheet", "Datasheet")], max_length=20)),
                ("channel", models.CharField(max_length=30)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL
                    ),
                ),
                (
                    "release",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="downloads", to="audits.release"
                    ),
                ),
            ],
            options={"db_table": "governance_download", "ordering": ["created_at", "id"]},
        ),
        migrations.AlterField(
            model_name="releasedatasheet",
            name="release",
            field=models.OneToOneField(
                on_delete=django.db.models.deletion.PROTECT, related_name="release_datasheet", to="audits.release"
            ),
        ),
        migrations.AlterField(
            model_name="driftrun",
            name="release",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="drift_runs", to="audits.release"
            ),
        ),
    ]

    operations = [migrations.SeparateDatabaseAndState(state_operations=state_operations)]
