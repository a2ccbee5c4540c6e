from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audits", "0005_release_moved_from_governance")]

    operations = [
        migrations.AddField(
            model_name="auditrun",
            name="audit_sample_rows",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="training and holdout rows the audit sampled; empty when it read all",
            ),
        ),
    ]
