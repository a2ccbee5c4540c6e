"""One schema vocabulary for the three apps: ingest, the generators and the audit checks read a
schema through ``core.schema`` and agree on which types are numeric and on one time-zone rule."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audits.metrics.base import AuditInputError
from audits.metrics.encoding import TableSchema
from core import schema
from governance import ingest
from synth_engine.generators import domain
from synth_engine.generators.base import SchemaMismatchError

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = {
    "columns": [
        {"name": "seen", "type": "datetime", "role": "other", "min": "2020-01-01T00:00:00Z"},
        {"name": "age", "type": "integer", "role": "quasi_identifier", "min": 0, "max": 120},
        {"name": "town", "type": "categorical", "role": "protected", "categories": ["Leeds", "York"]},
    ]
}


def test_the_core_module_imports_no_django():
    tree = ast.parse((ROOT / "core" / "schema.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.split(".")[0] in ("django", "rest_framework")}


@pytest.mark.parametrize(
    "path", ["governance/ingest.py", "synth_engine/generators/domain.py", "audits/metrics/encoding.py"]
)
def test_no_app_defines_its_own_schema_vocabulary(path):
    tree = ast.parse((ROOT / path).read_text())
    assigned = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    functions = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    assert not assigned & {"COLUMN_TYPES", "COLUMN_ROLES", "NUMERIC_TYPES"}
    assert "numeric_values" not in functions


def test_datetime_is_numeric_for_the_generators_and_the_audits_alike():
    specs = domain.parse_schema(SCHEMA)
    audit = TableSchema.from_dict(SCHEMA)
    assert [spec.name for spec in specs if spec.is_numeric] == ["seen", "age"]
    assert audit.numeric == ("seen", "age")


def test_aware_and_naive_timestamps_follow_one_rule_naive_is_utc():
    naive = pd.Series(pd.to_datetime(["2020-01-01T00:00:00", None]))
    aware = pd.Series(pd.to_datetime(["2020-01-01T01:00:00+01:00", None]))
    strings = pd.Series(["2020-01-01T00:00:00.900", None])
    expected = [1577836800.0, np.nan]
    for series in (naive, aware):
        np.testing.assert_array_equal(schema.numeric_values(series), expected)
    np.testing.assert_array_equal(schema.numeric_values(strings, "datetime"), expected)


def test_a_datetime_bound_is_read_as_utc_epoch_seconds():
    assert schema.parse_schema(SCHEMA)[0].minimum == 1577836800.0
    assert schema.parse_schema({"columns": [{"name": "d", "type": "datetime", "max": "2020-01-01T01:00+01:00"}]})[
        0
    ].maximum == pytest.approx(1577836800.0)


def test_ingest_accepts_datetime_bounds_the_generators_use(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"seen,age,town\n2021-03-04T05:06:07,40,Leeds\n2022-01-01T00:00:00,50,York\n")
    limits = ingest.IngestLimits(max_upload_bytes=10**6, max_expanded_bytes=10**7, max_compression_ratio=100)
    table = ingest.read_table(path, filename="t.csv", limits=limits, schema=SCHEMA)
    assert table.schema["columns"][0]["min"] == "2020-01-01T00:00:00Z"
    assert str(table.frame["seen"].dtype).startswith("datetime64")


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ({"name": "d", "type": "datetime", "min": "not a date"}, "min must be an ISO 8601 date or time"),
        ({"name": "a", "type": "integer", "nullable": "no"}, "nullable must be true or false"),
        ({"name": "a", "type": "integer", "role": "boss"}, "role must be one of"),
        ({"name": "a", "type": "integer", "step": 0.5}, "step is only allowed on float columns"),
        ({"name": "a", "type": "float", "step": 0}, "step must be a positive number"),
    ],
)
def test_each_app_refuses_a_bad_column_with_the_same_message_in_its_own_error(column, message):
    with pytest.raises(schema.SchemaError, match=message):
        schema.parse_schema({"columns": [column]})
    with pytest.raises(SchemaMismatchError, match=message):
        domain.parse_schema({"columns": [column]})
    with pytest.raises(AuditInputError, match=message):
        TableSchema.from_dict({"columns": [column]})


def test_unknown_keys_are_refused_only_at_the_edge():
    column = {"name": "a", "type": "integer", "colour": "red"}
    assert schema.parse_schema({"columns": [column]})[0].entry["colour"] == "red"
    with pytest.raises(schema.SchemaError, match="unknown keys: colour"):
        schema.parse_schema({"columns": [column]}, strict=True)
