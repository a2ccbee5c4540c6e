from django.db import migrations, models


def references_checked(apps, schema_editor):
    """A version by reference was checked in its engine at registration (and its job checks it
    there again): nothing for filing to read. An uploaded version is left unchecked: reading every
    stored file here would make the migration as slow as the storage (and need it reachable); it is
    checked at its next filing or by `synthgate dataset check`."""
    version = apps.get_model("governance", "DatasetVersion")
    version.objects.exclude(source_reference={}).update(rows_checked=True)


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0014_declared_public_rows"),
    ]

    operations = [
        migrations.AddField(
            model_name="datasetversion",
            name="rows_checked",
            field=models.BooleanField(
                default=False, help_text="the stored rows were checked against the declarations and hold them"
            ),
        ),
        migrations.AddField(
            model_name="datasetversion",
            name="rows_contradiction",
            field=models.TextField(
                blank=True,
                help_text="stewards only: why the stored rows contradict the declarations (the last check)",
            ),
        ),
        migrations.RunPython(references_checked, migrations.RunPython.noop),
    ]
