"""The function Spark's executors run to count a pass (``spark._table_counter``) gives the codec's
own codes and the tables ``TableCounter`` gives, from the values Spark hands it.

Spark computes each column's value (clipped into a numeric codec's bounds, null where missing) or,
for a category or a boolean, its integer code; the executors finish the searches (a numeric
codec's cells, a magnitude bucket) and the bins with NumPy. No Spark session is needed: the
function is called on Arrow batches as ``mapInArrow`` calls it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from synth_engine.engines.spark import Code, _table_counter
from synth_engine.generators.counts import TableCounter
from synth_engine.generators.domain import NumericCodec, magnitude_index, magnitude_thresholds


def counted(codes: list[Code], arrays: list[pa.Array], groups, shapes, batch_rows: int = 50_000):
    """The tables and the invalid count the executors' function yields over ``arrays`` in batches."""
    count = _table_counter([code.plan() for code in codes], shapes, groups, [])
    names = [f"c{k}" for k in range(len(arrays))]
    batches = [
        pa.RecordBatch.from_arrays([array.slice(start, batch_rows) for array in arrays], names=names)
        for start in range(0, len(arrays[0]), batch_rows)
    ]
    (out,) = list(count(iter(batches)))
    tables = [np.zeros(int(np.prod(shape)), dtype=np.int64) for shape in shapes]
    invalid = 0
    for table, cell, n in zip(*(out.column(name).to_pylist() for name in ("tbl", "cell", "n")), strict=True):
        if table < 0:
            invalid += n
        else:
            tables[table][cell] += n
    return [t.reshape(shape) for t, shape in zip(tables, shapes, strict=True)], invalid


def point_codec() -> NumericCodec:
    """Float cells [0, 1), [1, 1], [1, 2), [2, 3]: a single-value cell a plain search misses, and missing values."""
    low, high = np.array([0.0, 1.0, 1.0, 2.0]), np.array([1.0, 1.0, 2.0, 3.0])
    return NumericCodec(name="x", type="float", low=low, high=high, has_missing=True, dtype="float64")


def test_the_executors_codes_are_the_codecs_own_and_their_tables_those_of_table_counter() -> None:
    rng = np.random.default_rng(3)
    n = 140_000  # more than two of the executors' slices of 65,536 rows, over three batches
    codec = point_codec()
    values = rng.choice([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, np.nan], size=n)
    fine = codec.encode(pd.Series(values))
    assert set(np.unique(fine)) == {0, 1, 2, 3, 4}  # the point 1.0 in its own cell, NaN at the missing code
    label = rng.integers(0, 2, n)
    signed = rng.choice([-7.5, -1.0, 0.0, 0.25, 3.0, 1e9, np.nan], size=n)
    thresholds = np.asarray(magnitude_thresholds(integer=False), dtype=np.float64)
    known = ~np.isnan(signed)
    magnitude, length = magnitude_index(signed[known], integer=False)
    bins = np.array([0, 1, 1, 2, 2])
    codes = [
        Code(None),  # a code Spark computed (the label's)
        Code(None, "cells", low=codec.low, high=codec.high, missing=codec.missing_code),
        Code(None, "cells", low=codec.low, high=codec.high, missing=codec.missing_code, bins=bins),
        Code(None, "magnitude", thresholds=thresholds, missing=length),
    ]
    arrays = [
        pa.array(label, pa.int32()),
        pa.array(values, pa.float64(), from_pandas=True),  # NaN read as null, as Spark sends a missing value
        pa.array(values, pa.float64(), from_pandas=True),
        pa.array(signed, pa.float64(), from_pandas=True),
    ]
    groups = [(0,), (1,), (3,), (0, 2, 1), (0, 2, 2), (0, 1)]
    sizes = [2, codec.n_codes, 3, length + 1]
    shapes = [tuple(sizes[c] for c in group) for group in groups]
    tables, invalid = counted(codes, arrays, groups, shapes)
    assert invalid == 0
    assert np.array_equal(tables[0], np.bincount(label, minlength=2))
    assert np.array_equal(tables[1], np.bincount(fine, minlength=codec.n_codes))
    assert np.array_equal(tables[2][:-1], np.bincount(magnitude, minlength=length))
    assert tables[2][-1] == (~known).sum()
    expected = TableCounter(sizes[:3], groups[3:])
    expected.add([label, fine, bins[fine]])
    for ours, theirs in zip(tables[3:], expected.tables(), strict=True):
        assert ours.shape == theirs.shape and np.array_equal(ours, theirs)


def test_every_value_the_codec_cannot_code_is_counted_as_invalid() -> None:
    codec = point_codec()
    values = np.array([0.5, np.nan, 2.5, np.nan])
    no_missing = Code(None, "cells", low=codec.low, high=codec.high, missing=-1)  # not nullable
    unknown = Code(None)  # a category outside the codec's list and no other code: -1 from Spark
    _, invalid = counted(
        [no_missing, unknown],
        [pa.array(values, pa.float64(), from_pandas=True), pa.array([0, -1, 1, -1], pa.int32())],
        [(0,), (1,)],
        [(4,), (2,)],
    )
    assert invalid == 4  # SparkCounts refuses the pass with it (a table id of -1)


WORKER = """
import pickle, sys
import pyarrow
function, stream = pickle.load(sys.stdin.buffer)
batches = list(pyarrow.ipc.open_stream(stream))
(out,) = list(function(iter(batches)))
print(repr(["pandas" in sys.modules, out.to_pydict()]))
"""


def test_the_executors_function_counts_in_a_python_with_numpy_and_pyarrow_without_loading_pandas() -> None:
    """A Python worker of Spark unpickles the function by value and runs it; pandas would be about
    45 MB more in each worker (pyarrow's ``to_numpy`` and ``pyarrow.array`` import it)."""
    import ast
    import subprocess
    import sys

    from pyspark.serializers import CloudPickleSerializer

    codec = point_codec()
    codes = [Code(None), Code(None, "cells", low=codec.low, high=codec.high, missing=codec.missing_code)]
    function = _table_counter([code.plan() for code in codes], [(2,), (codec.n_codes,)], [(0,), (1,)], [2])
    batch = pa.RecordBatch.from_arrays(
        [
            pa.array([0, 1, 1, 0, 9], pa.int32()).slice(0, 4),  # an offset of 0 with a longer buffer
            pa.array([0.5, None, 2.5, 1.0, 9.0], pa.float64()).slice(0, 4),
            pa.array(["a", "é", None, "a", "z"], pa.string()).slice(0, 4),
        ],
        names=["c0", "c1", "t0"],
    ).slice(1)  # offsets of 1 in every column: rows (1, None, "é"), (1, 2.5, None), (0, 1.0, "a")
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    payload = CloudPickleSerializer().dumps((function, sink.getvalue().to_pybytes()))
    result = subprocess.run(
        [sys.executable, "-I", "-c", WORKER], input=payload, capture_output=True, check=True, cwd="/"
    )
    pandas_loaded, out = ast.literal_eval(result.stdout.decode())
    assert not pandas_loaded
    rows = sorted(zip(out["tbl"], out["cell"], out["key"], out["n"], strict=True), key=repr)
    # the label's codes 1, 1, 0; the cells of None (missing), 2.5 (cell 3) and 1.0 (the point cell 1)
    assert rows == sorted(
        [(0, 0, None, 1), (0, 1, None, 2), (1, codec.missing_code, None, 1), (1, 3, None, 1), (1, 1, None, 1)]
        + [(2, 0, "a", 1), (2, 0, "é", 1)],
        key=repr,
    )
