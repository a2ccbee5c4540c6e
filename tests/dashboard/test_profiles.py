"""Column profiles: the pure profile of a table, its cache per version, the sample above the
limit, and who sees a profile of the real rows on the dataset page."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from audits.metrics.profiles import MAX_BARS, NUMERIC_BINS, sample_positions, table_profile
from dashboard.charts import profile_histogram_svg


def test_a_profile_counts_missing_values_distinct_values_and_bars():
    frame = pd.DataFrame(
        {
            "city": ["a", "b", None, "b"] + [f"rare{k}" for k in range(20)],
            "age": [float(k) for k in range(23)] + [np.nan],
            "kids": [0, 1, 1, 2] * 6,
        }
    )
    profile = table_profile(frame, {"city": "categorical", "age": "float", "kids": "integer"})
    city, age, kids = profile["columns"]
    assert profile["rows"] == 24
    assert (city["missing"], city["distinct"]) == (1, 22)
    assert city["missing_share"] == pytest.approx(1 / 24)
    # The commonest first, the rest pooled: every present row is counted once.
    histogram = city["histogram"]
    assert histogram["labels"][0] == "b" and histogram["counts"][0] == 2
    assert len(histogram["labels"]) == MAX_BARS - 1 and histogram["other_values"] == 22 - (MAX_BARS - 1)
    assert sum(histogram["counts"]) + histogram["other"] == 23
    assert age["histogram"]["kind"] == "numeric" and len(age["histogram"]["counts"]) == NUMERIC_BINS
    assert sum(age["histogram"]["counts"]) == 23 and age["histogram"]["edges"][-1] == "22"
    assert kids["histogram"] == {
        "kind": "values",
        "labels": ["0", "1", "2"],
        "counts": [6, 12, 6],
        "other": 0,
        "other_values": 0,
    }


def test_the_histogram_is_an_accessible_svg_with_readable_labels():
    column = table_profile(pd.DataFrame({"sex": ["Female", "Male", "Male"]}), {"sex": "categorical"})["columns"][0]
    svg = profile_histogram_svg(column, rows=3, colour="#0072B2")
    assert svg.startswith("<svg") and 'role="img"' in svg and "<title>Histogram of sex</title>" in svg
    assert (
        'font-size="11"' in svg
        and ">Female</text>" in svg
        and all(f">{tick}</text>" in svg for tick in ("0%", "40%", "80%"))
    )
    assert svg.count('class="bar profile"') == 2


def test_a_sample_is_the_same_for_the_same_seed_and_every_row_when_small():
    assert sample_positions(10, 20, seed=1).tolist() == list(range(10))
    first, again = sample_positions(1000, 50, seed=7), sample_positions(1000, 50, seed=7)
    assert first.tolist() == again.tolist() and len(set(first.tolist())) == 50
    assert first.tolist() != sample_positions(1000, 50, seed=8).tolist()


@pytest.mark.django_db
def test_stewards_approvers_and_auditors_see_the_real_rows_profiled_and_requesters_do_not(cast, adult, login):
    from dashboard.profiles import profile_key, version_profile
    from governance.selectors import dataset_latest_source
    from governance.storage import version_storage

    for user in (cast.steward, cast.approver, cast.auditor):
        response = login(user).get("/datasets/adult/")
        page = response.content.decode()
        assert "Column profiles of the real rows (source v1)" in page
        assert page.count("<svg") == 15 and "Histogram of income as a table" in page
        assert response.context["profiles"].synthetic is False
    requester = login(cast.requester).get("/datasets/adult/")
    page = requester.content.decode()
    assert requester.context["profiles"] is None and "<svg" not in page
    assert "Profiles of the real rows are shown only to stewards, approvers and auditors" in page

    # Cached per version: the next page reads the stored profile, not the table.
    source = dataset_latest_source(dataset=adult)
    storage = version_storage()
    assert storage.exists(profile_key(source))
    table = storage.path(source.storage_key)
    os.rename(table, f"{table}.away")
    try:
        assert version_profile(source)["rows"] == 2000
    finally:
        os.rename(f"{table}.away", table)


@pytest.mark.django_db
def test_a_version_above_the_limit_is_profiled_from_a_stated_sample(cast, adult, login, settings):
    from dashboard.profiles import version_profile
    from governance.selectors import dataset_latest_source

    settings.SYNTHGATE_PROFILE_SAMPLE_ROWS = 500
    source = dataset_latest_source(dataset=adult)
    profile = version_profile(source)
    assert (profile["rows"], profile["n_rows"], profile["sampled"]) == (500, 2000, True)
    assert profile["head"][0][:2] == ["41", "Private"]  # the table's first rows, not the sample's
    assert (
        sum(profile["columns"][1]["histogram"]["counts"])
        + profile["columns"][1]["missing"]
        + profile["columns"][1]["histogram"]["other"]
        == 500
    )
    page = login(cast.steward).get("/datasets/adult/").content.decode()
    assert "Computed from a uniform random sample of 500 of the 2,000 rows." in page
