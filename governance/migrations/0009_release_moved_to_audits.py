"""Release and Download now live in audits (audits/0005): drop them from governance's state only.

Their tables (``governance_release``, ``governance_download``) and rows stay; no data moves.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("governance", "0008_request_client_token"),
        ("audits", "0005_release_moved_from_governance"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Download"), migrations.DeleteModel(name="Release")]
        ),
    ]
