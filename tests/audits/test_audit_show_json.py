"""`synthgate audit show --json` serializes a stored run without loading the URLconf (every view
module, pandas, SciPy, the generators): the datasheet's download path is built, not reversed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.urls import reverse

from audits.apis.runs import datasheet_download_path

ROOT = Path(__file__).resolve().parents[2]


def test_the_built_datasheet_path_is_the_one_the_urlconf_reverses():
    for run_id in (1, 42, 123456):
        assert datasheet_download_path(run_id) == reverse("audit-datasheet", kwargs={"run_id": run_id})


def test_serializing_a_run_s_datasheet_loads_no_view_module_and_no_pandas(tmp_path):
    program = (
        "import sys, django\n"
        "django.setup()\n"
        "from django.utils import timezone\n"
        "from audits.apis.runs import DatasheetOutputSerializer\n"
        "from audits.models import Datasheet\n"
        "sheet = Datasheet(run_id=7, sha256='0' * 64, signer='Synthgate', signed_at=timezone.now(), size_bytes=1)\n"
        "print(DatasheetOutputSerializer(sheet).data['download_url'])\n"
        "loaded = ('pandas', 'scipy', 'sklearn', 'torch', 'dashboard.views', 'config.urls')\n"
        "heavy = [m for m in loaded if m in sys.modules]\n"
        "print('HEAVY', ','.join(heavy))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local", "SYNTHGATE_DATA_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    path, heavy = done.stdout.strip().splitlines()
    assert path == "/api/audits/7/datasheet/"
    assert heavy == "HEAVY", f"imported {heavy[6:]}"
