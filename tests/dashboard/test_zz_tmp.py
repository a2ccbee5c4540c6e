import pytest
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
def test_zz(live_server):
    import time; time.sleep(2)
    from django.db import connection
    with connection.cursor() as c:
        c.execute("select pid, application_name, state, left(query, 200) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()")
        for row in c.fetchall(): print("SESSION", row)
