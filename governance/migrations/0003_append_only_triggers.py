"""PostgreSQL triggers: the audit log and the budget ledger refuse UPDATE, DELETE and
TRUNCATE; an approval's requester must be its request's requester (four-eyes).

The only way around the append-only triggers is a superuser session that sets
``synthgate.maintenance = 'on'`` (used by the test suite to empty tables between tests).
The application should connect as a role that is not a superuser.
"""

from django.db import migrations

APPEND_ONLY_FUNCTION = """
CREATE OR REPLACE FUNCTION synthgate_refuse_change() RETURNS trigger AS $$
BEGIN
    IF current_setting('synthgate.maintenance', true) = 'on'
       AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        IF TG_OP = 'TRUNCATE' THEN RETURN NULL; END IF;
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'synthgate: % on % is refused: the table is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

APPROVAL_FUNCTION = """
CREATE OR REPLACE FUNCTION synthgate_check_approval() RETURNS trigger AS $$
DECLARE owner_id bigint;
BEGIN
    SELECT requester_id INTO owner_id FROM governance_datarequest WHERE id = NEW.request_id;
    IF NEW.requester_id IS DISTINCT FROM owner_id OR NEW.approver_id = owner_id THEN
        RAISE EXCEPTION 'synthgate: four-eyes rule: a requester cannot decide on their own request'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""

TABLES = ("governance_auditevent", "governance_budgetentry")


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(APPEND_ONLY_FUNCTION, params=None)
    schema_editor.execute(APPROVAL_FUNCTION, params=None)
    for table in TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION synthgate_refuse_change();"
        )
        schema_editor.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION synthgate_refuse_change();"
        )
    schema_editor.execute(
        "CREATE TRIGGER governance_approval_four_eyes BEFORE INSERT OR UPDATE ON governance_approval "
        "FOR EACH ROW EXECUTE FUNCTION synthgate_check_approval();"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};")
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};")
    schema_editor.execute("DROP TRIGGER IF EXISTS governance_approval_four_eyes ON governance_approval;")
    schema_editor.execute("DROP FUNCTION IF EXISTS synthgate_refuse_change();")
    schema_editor.execute("DROP FUNCTION IF EXISTS synthgate_check_approval();")


class Migration(migrations.Migration):
    dependencies = [("governance", "0002_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
