from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0013_request_output_format"),
    ]

    operations = [
        migrations.AddField(
            model_name="datasetversion",
            name="rows_declared",
            field=models.BooleanField(
                default=False,
                help_text="n_rows declared public by the steward at registration: public_rows is exact, free",
            ),
        ),
    ]
