"""Benchmark Synthgate's generators: fit time, sampling speed, peak memory and utility.

Usage::

    .venv/bin/python bench/bench_generators.py                     # adult + caravan, mst + copula
    .venv/bin/python bench/bench_generators.py --dataset adult --epsilons 1 3 --quick
    .venv/bin/python bench/bench_generators.py --scale             # 1,000,000 x 15 scale run

``rows_per_s`` is wall-clock sampling speed (1,000,000 rows, or 100,000 with ``--quick``);
``cpu_rows_per_s`` uses the process's CPU time, which is what to compare on a shared, loaded
machine (``load`` is the 1-minute load average during the run, on 2 cores).

Each (generator, dataset, ε) runs in a fresh process so that its peak RSS (``ru_maxrss``, which
includes the interpreter, pandas and the data) is its own. Utility is measured on the data set's
fixed split (``train_test_split(test_size=0.2, random_state=0, stratify=label)``):

- TSTR ROC AUC: ``HistGradientBoostingClassifier`` (default parameters, ``random_state=0`` so the
  early-stopping split is fixed) trained on the synthetic rows, scored on the real holdout;
  TRTR trains on the real training rows instead. Categorical columns are ordinal-encoded with
  one mapping shared by real and synthetic rows.
- 1-way and 2-way TVD: mean total-variation distance between synthetic and real training rows
  over every column and every pair of columns; numeric columns are cut into 20 quantile bins of
  the real training data.

Declared public in the adult schema (documented, as a data owner would): the numeric bounds
below. Category lists are not declared (estimated with DP, rare values become ``"other"``)
unless ``--declare-categories``. For caravan all 86 columns are categorical; only the label's
classes ``No``/``Yes`` are declared public.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATASETS = Path(os.environ.get("SYNTHGATE_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))
ADULT_NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
ADULT_BOUNDS = {
    "age": (17, 90),
    "fnlwgt": (10_000, 1_500_000),
    "education-num": (1, 16),
    "capital-gain": (0, 99_999),
    "capital-loss": (0, 4_356),
    "hours-per-week": (1, 99),
}
LABELS = {"adult": ("income", ">50K"), "caravan": ("Purchase", "Yes")}
LABEL_CLASSES = {"adult": ["<=50K", ">50K"], "caravan": ["No", "Yes"]}


# ---------------------------------------------------------------------- data


def load(dataset: str) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Train and holdout frames and the schema of ``dataset``."""
    from sklearn.model_selection import train_test_split

    frame = pd.read_csv(DATASETS / dataset / f"{dataset}.csv", dtype=str, keep_default_na=False)
    numeric = ADULT_NUMERIC if dataset == "adult" else []
    for column in numeric:
        frame[column] = pd.to_numeric(frame[column])
    label = LABELS[dataset][0]
    train, holdout = train_test_split(frame, test_size=0.2, random_state=0, stratify=frame[label])
    return (
        train.reset_index(drop=True),
        holdout.reset_index(drop=True),
        schema_for(frame, dataset, declare_categories=False),
    )


def schema_for(frame: pd.DataFrame, dataset: str, *, declare_categories: bool) -> dict[str, Any]:
    label = LABELS[dataset][0]
    columns = []
    for name in frame.columns:
        if dataset == "adult" and name in ADULT_NUMERIC:
            low, high = ADULT_BOUNDS[name]
            columns.append({"name": name, "type": "integer", "role": "other", "min": low, "max": high})
            continue
        column: dict[str, Any] = {"name": name, "type": "categorical", "role": "label" if name == label else "other"}
        if declare_categories:
            column["categories"] = sorted(frame[name].unique().tolist())
        elif name == label:  # a label's domain is always declared (issue 11.7): the task's classes
            column["categories"] = LABEL_CLASSES[dataset]
        columns.append(column)
    return {"columns": columns}


def scale_table(n_rows: int, seed: int = 0) -> pd.DataFrame:
    """``n_rows`` rows made by resampling adult with noise: numeric columns jittered
    (age ±2, fnlwgt ×(1±10 %), hours ±3, capital columns kept), categoricals swapped with
    another row's value with probability 5 %."""
    rng = np.random.default_rng(seed)
    frame = pd.read_csv(DATASETS / "adult" / "adult.csv", dtype=str, keep_default_na=False)
    rows = frame.iloc[rng.integers(0, len(frame), n_rows)].reset_index(drop=True)
    for column in ADULT_NUMERIC:
        rows[column] = pd.to_numeric(rows[column])
    rows["age"] = np.clip(rows["age"] + rng.integers(-2, 3, n_rows), 17, 90)
    rows["fnlwgt"] = np.clip((rows["fnlwgt"] * rng.uniform(0.9, 1.1, n_rows)).round(), 10_000, 1_500_000).astype(
        np.int64
    )
    rows["hours-per-week"] = np.clip(rows["hours-per-week"] + rng.integers(-3, 4, n_rows), 1, 99)
    for column in rows.columns.difference(ADULT_NUMERIC):
        swap = rng.random(n_rows) < 0.05
        rows.loc[swap, column] = rows[column].to_numpy()[rng.integers(0, n_rows, swap.sum())]
    return rows


# ---------------------------------------------------------------------- metrics


def _codes(real: pd.DataFrame, other: pd.DataFrame, numeric: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Discretise both frames on the real frame's terms (20 quantile bins for numerics)."""
    real_codes, other_codes = [], []
    for column in real.columns:
        if column in numeric:  # a missing value is a code of its own, after the 20 bins
            values = pd.to_numeric(real[column], errors="coerce").to_numpy(dtype=float)
            edges = np.unique(np.nanquantile(values, np.linspace(0, 1, 21)))[1:-1]
            for frame_values, out in ((values, real_codes), (other[column], other_codes)):
                numbers = pd.to_numeric(frame_values, errors="coerce")
                numbers = np.asarray(numbers, dtype=float)
                codes = np.searchsorted(edges, numbers, side="right")
                out.append(np.where(np.isnan(numbers), len(edges) + 1, codes))
        else:
            levels = {v: i for i, v in enumerate(pd.unique(real[column].astype(str)))}
            real_codes.append(real[column].astype(str).map(levels).to_numpy())
            other_codes.append(other[column].astype(str).map(levels).fillna(-1).to_numpy())
    return np.column_stack(real_codes).astype(np.int64), np.column_stack(other_codes).astype(np.int64)


def _tvd(a: np.ndarray, b: np.ndarray) -> float:
    """Total-variation distance between the empirical distributions of code rows a and b."""
    shifted_a, shifted_b = a + 1, b + 1  # unknown synthetic values are coded -1
    base = int(max(shifted_a.max(), shifted_b.max())) + 1
    weights = base ** np.arange(a.shape[1])
    keys_a, keys_b = shifted_a @ weights, shifted_b @ weights
    size = int(base ** a.shape[1])
    p = np.bincount(keys_a, minlength=size) / len(a)
    q = np.bincount(keys_b, minlength=size) / len(b)
    return 0.5 * float(np.abs(p - q).sum())


def tvd_scores(real: pd.DataFrame, synthetic: pd.DataFrame, numeric: list[str]) -> tuple[float, float]:
    """Mean 1-way and mean 2-way total-variation distance (lower is better, range [0, 1])."""
    real_codes, synthetic_codes = _codes(real, synthetic[real.columns], numeric)
    d = real_codes.shape[1]
    one = [_tvd(real_codes[:, [i]], synthetic_codes[:, [i]]) for i in range(d)]
    two = [_tvd(real_codes[:, [i, j]], synthetic_codes[:, [i, j]]) for i, j in itertools.combinations(range(d), 2)]
    return float(np.mean(one)), float(np.mean(two))


def tstr(
    train: pd.DataFrame, holdout: pd.DataFrame, label: str, positive: str, numeric: list[str]
) -> tuple[float, float]:
    """ROC AUC and positive-class recall of a model trained on ``train``, scored on ``holdout``
    (higher is better, AUC 0.5 = chance)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import recall_score, roc_auc_score

    features = [c for c in holdout.columns if c != label]
    x_train, x_test = _features(train[features], holdout[features], numeric)
    y_train = (train[label].astype(str) == positive).to_numpy()
    y_test = (holdout[label].astype(str) == positive).to_numpy()
    if y_train.all() or not y_train.any():
        return 0.5, 0.0
    model = HistGradientBoostingClassifier(random_state=0).fit(x_train, y_train)
    scores = model.predict_proba(x_test)[:, 1]
    return float(roc_auc_score(y_test, scores)), float(recall_score(y_test, model.predict(x_test)))


def _features(train: pd.DataFrame, test: pd.DataFrame, numeric: list[str]) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.preprocessing import OrdinalEncoder

    categorical = [c for c in train.columns if c not in numeric]
    encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    encoder.fit(pd.concat([train[categorical], test[categorical]]).astype(str))

    def matrix(frame: pd.DataFrame) -> np.ndarray:
        codes = encoder.transform(frame[categorical].astype(str))
        values = frame[numeric].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        return np.column_stack([values, codes])

    return matrix(train), matrix(test)


# ---------------------------------------------------------------------- runs


def _run(job: dict[str, Any], queue: Any) -> None:
    """Child process: fit, time sampling, report peak RSS and the synthetic frames."""
    sys.path.insert(0, str(ROOT))
    from synth_engine.generators import get_generator

    if job["dataset"] == "scale":
        train, schema = scale_table(job["rows"]), None
        schema = schema_for(train, "adult", declare_categories=False)
    else:
        train, _, schema = load(job["dataset"])
        if job["declare_categories"]:
            schema = schema_for(train, job["dataset"], declare_categories=True)
    generator = get_generator(job["generator"], **job["params"])
    started = time.perf_counter()
    generator.fit(train, schema, job["epsilon"], 1e-5, random_state=job["seed"])
    fit_seconds = time.perf_counter() - started
    started, cpu_started = time.perf_counter(), time.process_time()
    speed_rows = generator.sample(job["speed_rows"])
    rows_per_second = len(speed_rows) / (time.perf_counter() - started)
    cpu_rows_per_second = len(speed_rows) / (time.process_time() - cpu_started)
    del speed_rows
    n_eval = min(len(train), 200_000)
    synthetic = {"plain": generator.sample(n_eval)}
    if job.get("rebalance"):
        synthetic["rebalanced"] = generator.sample(n_eval, conditions=job["rebalance"])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(
        {
            "fit_seconds": fit_seconds,
            "rows_per_second": rows_per_second,
            "cpu_rows_per_second": cpu_rows_per_second,
            "load": os.getloadavg()[0],
            "peak_mb": peak_mb,
            "synthetic": synthetic,
            "spent": generator.privacy_spent().epsilon,
        }
    )


def run_in_child(job: dict[str, Any]) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_run, args=(job, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def evaluate(
    job: dict[str, Any], result: dict[str, Any], train: pd.DataFrame, holdout: pd.DataFrame
) -> list[dict[str, Any]]:
    label, positive = LABELS.get(job["dataset"], LABELS["adult"])
    numeric = ADULT_NUMERIC if job["dataset"] in ("adult", "scale") else []
    rows = []
    for variant, synthetic in result["synthetic"].items():
        auc, recall = tstr(synthetic, holdout, label, positive, numeric)
        one, two = tvd_scores(train, synthetic, numeric)
        rows.append(
            {
                "generator": job["generator"] + ("+rebalance" if variant != "plain" else ""),
                "dataset": job["dataset"] + ("/declared" if job["declare_categories"] else ""),
                "epsilon": job["epsilon"],
                "spent": result["spent"],
                "fit_s": result["fit_seconds"],
                "rows_per_s": result["rows_per_second"],
                "cpu_rows_per_s": result["cpu_rows_per_second"],
                "load": result["load"],
                "peak_mb": result["peak_mb"],
                "tstr_auc": auc,
                "recall_pos": recall,
                "tvd_1": one,
                "tvd_2": two,
            }
        )
    return rows


def baseline(dataset: str) -> dict[str, Any]:
    train, holdout, _ = load(dataset)
    label, positive = LABELS[dataset]
    numeric = ADULT_NUMERIC if dataset == "adult" else []
    auc, recall = tstr(train, holdout, label, positive, numeric)
    return {
        "generator": "TRTR (real)",
        "dataset": dataset,
        "epsilon": float("nan"),
        "spent": float("nan"),
        "fit_s": float("nan"),
        "rows_per_s": float("nan"),
        "cpu_rows_per_s": float("nan"),
        "load": os.getloadavg()[0],
        "peak_mb": float("nan"),
        "tstr_auc": auc,
        "recall_pos": recall,
        "tvd_1": 0.0,
        "tvd_2": 0.0,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    header = [
        "generator",
        "dataset",
        "epsilon",
        "spent",
        "fit_s",
        "rows_per_s",
        "cpu_rows_per_s",
        "peak_mb",
        "tstr_auc",
        "recall_pos",
        "tvd_1",
        "tvd_2",
        "load",
    ]
    print(" | ".join(f"{h:>18}" if i < 2 else f"{h:>10}" for i, h in enumerate(header)))
    for row in rows:
        cells = []
        for i, key in enumerate(header):
            value = row[key]
            if i < 2:
                cells.append(f"{value:>18}")
            elif key in ("rows_per_s", "cpu_rows_per_s"):
                cells.append(f"{value:>10,.0f}" if value == value else f"{'-':>10}")
            elif isinstance(value, float):
                cells.append(f"{value:>10.4f}" if value == value else f"{'-':>10}")
            else:
                cells.append(f"{value!s:>10}")
        print(" | ".join(cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=["adult", "caravan", "all"], default="all")
    parser.add_argument("--epsilons", type=float, nargs="+", default=None)
    parser.add_argument("--generators", nargs="+", default=["mst", "copula"])
    parser.add_argument("--quick", action="store_true", help="fewer sampled rows for speed")
    parser.add_argument(
        "--declare-categories", action="store_true", help="also run with public category lists declared in the schema"
    )
    parser.add_argument("--scale", action="store_true", help="1,000,000-row scale run only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="generator parameter (repeatable), e.g. --param max_bins=24",
    )
    args = parser.parse_args()
    params = {k: _literal(v) for k, v in (p.split("=", 1) for p in args.param)}
    if args.scale:
        return scale_run(args, params)
    datasets = ["adult", "caravan"] if args.dataset == "all" else [args.dataset]
    rows: list[dict[str, Any]] = []
    for dataset in datasets:
        train, holdout, _ = load(dataset)
        rows.append(baseline(dataset))
        print_table(rows[-1:])
        epsilons = args.epsilons or ([1.0, 3.0] if dataset == "adult" else [3.0])
        declared = [False, True] if args.declare_categories else [False]
        for generator, epsilon, declare in itertools.product(args.generators, epsilons, declared):
            if generator == "copula" and (epsilon != epsilons[0] or declare):
                continue  # non-private: ε does not apply
            label = LABELS[dataset][0]
            positive_shares = {"Yes": 0.5, "No": 0.5} if dataset == "caravan" else None
            job = {
                "dataset": dataset,
                "generator": generator,
                "epsilon": epsilon,
                "seed": args.seed,
                "declare_categories": declare,
                "params": params if generator == "mst" else {},
                "speed_rows": 100_000 if args.quick else 1_000_000,
                "rebalance": {label: positive_shares} if positive_shares else None,
            }
            result = run_in_child(job)
            new_rows = evaluate(job, result, train, holdout)
            print_table(new_rows)
            rows += new_rows
    print("\nSummary")
    print_table(rows)


def _literal(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def scale_run(args: argparse.Namespace, params: dict[str, Any]) -> None:
    job = {
        "dataset": "scale",
        "generator": "mst",
        "epsilon": 1.0,
        "seed": args.seed,
        "declare_categories": False,
        "params": params,
        "rows": 1_000_000,
        "speed_rows": 1_000_000,
    }
    result = run_in_child(job)
    table = scale_table(job["rows"])
    synthetic = result["synthetic"]["plain"]
    one, two = tvd_scores(table, synthetic, ADULT_NUMERIC)
    print(
        f"scale run: 1,000,000 x 15, mst eps=1: fit {result['fit_seconds']:.1f} s, "
        f"sampling {result['rows_per_second']:,.0f} rows/s (wall), "
        f"{result['cpu_rows_per_second']:,.0f} rows/s (CPU), peak RSS {result['peak_mb']:.0f} MB, "
        f"load average {result['load']:.1f}, "
        f"1-way TVD {one:.4f}, 2-way TVD {two:.4f} (vs the 1M table, 200k synthetic rows)"
    )


if __name__ == "__main__":
    main()
