import json, time
from pathlib import Path
import pandas as pd
import pytest
from django.conf import settings
from audits.services import audit_external
from synth_engine.generators import get_generator
from tests.governance.factories import dataset_register_adult
from governance.services import dataset_register

pytestmark = pytest.mark.django_db(transaction=True)

def test_scratch(cast, adult_schema, tmp_path):
    source = pd.read_csv("tests/fixtures/adult_2000.csv")
    train, holdout = source.iloc[:1200], source.iloc[1200:]
    train.to_csv(tmp_path / "train.csv", index=False); holdout.to_csv(tmp_path / "holdout.csv", index=False)
    dataset_register(actor=cast.steward, name="adult-ext", path=tmp_path / "train.csv", filename="train.csv",
                     epsilon_cap="10", delta_cap="1e-4", schema=adult_schema)
    t = time.time()
    synth = get_generator("mst").fit(train, adult_schema, 1.0, 1e-6, random_state=3).sample(1200)
    print("mst", time.time() - t)
    synth.to_csv(tmp_path / "clean.csv", index=False)
    leaky = pd.concat([synth.iloc[:1080], train.sample(120, random_state=1)])
    leaky.to_csv(tmp_path / "leaky.csv", index=False)
    for name in ("clean", "leaky"):
        t = time.time()
        run = audit_external(actor=cast.auditor, dataset_name="adult-ext", synthetic_path=tmp_path / f"{name}.csv",
                             holdout_path=tmp_path / "holdout.csv", seed=5)
        print(name, time.time() - t, run.status, run.blocked, run.failed_checks, [(c["family"], c["caught"], c["caught_by"]) for c in run.controls], run.error)
        for c in run.checks.all():
            print("   ", c.name, c.category, c.value, c.threshold, c.verdict)
