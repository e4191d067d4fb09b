#!/usr/bin/python3
"""Regenerate the golden test data of the Go package xgbmodel.

Run from the repository root with the *system* interpreter (it has Debian's
python3-xgboost):

    /usr/bin/python3 plugins/detector-xgboost/training/golden.py

Writes into plugins/detector-xgboost/xgbmodel/testdata/:

  binary_model.json       binary:logistic, 50 trees of depth <= 4
  multiclass_model.json   multi:softprob, 4 classes x 50 rounds
  <name>_golden.csv       evaluation rows + XGBoost's predict_proba
  <name>_contribs.csv     XGBoost's Saabas contributions (approx_contribs)

Everything is seeded, so reruns with the same XGBoost/NumPy versions give
identical files.
"""
import csv
import json
import os

import numpy as np
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "xgbmodel", "testdata"))

FEATURES = [
    "pkt_count",  # integer
    "byte_count",  # integer, some values above 2**24 (inexact in float32)
    "duration_s",  # continuous
    "dst_port",  # integer
    "syn_ratio",  # continuous in [0, 1]
    "iat_mean_ms",  # continuous, ~15% missing
    "flag_count",  # small integer, ~10% missing
    "entropy_delta",  # continuous, negative values
]
N_TRAIN = 6000
N_RANDOM_EVAL = 1000
N_CONTRIB_ROWS = 300


def synth(rng, n):
    """Flow-like synthetic features with integers, continuous values and NaNs."""
    X = np.empty((n, len(FEATURES)))
    X[:, 0] = rng.poisson(20, n) * rng.integers(1, 5, n)
    X[:, 1] = X[:, 0] * rng.integers(40, 1500, n)
    big = rng.random(n) < 0.05
    X[big, 1] += rng.integers(2**24, 2**26, big.sum())
    X[:, 2] = rng.exponential(3.0, n)
    ports = np.array([22, 53, 80, 123, 443, 3389, 8080])
    X[:, 3] = np.where(rng.random(n) < 0.7, rng.choice(ports, n), rng.integers(1024, 65536, n))
    X[:, 4] = rng.random(n)
    X[:, 5] = rng.lognormal(2.0, 1.0, n)
    X[rng.random(n) < 0.15, 5] = np.nan
    X[:, 6] = rng.integers(0, 6, n)
    X[rng.random(n) < 0.10, 6] = np.nan
    X[:, 7] = rng.normal(0.0, 1.0, n)
    return X


def binary_labels(rng, X):
    flags = np.nan_to_num(X[:, 6], nan=2.5)
    iat = np.nan_to_num(X[:, 5], nan=10.0)
    z = (
        0.04 * (X[:, 0] - 40)
        + 1.5 * (X[:, 4] - 0.5)
        + 0.6 * (flags - 2.5)
        - 0.05 * iat
        + 0.8 * X[:, 7]
        + 1.2 * (X[:, 3] == 3389)
        + 0.5 * (X[:, 1] > 2**24)
    )
    return (rng.random(len(X)) < 1 / (1 + np.exp(-z))).astype(int)


def multiclass_labels(rng, X):
    flags = np.nan_to_num(X[:, 6], nan=2.5)
    scores = np.stack(
        [
            np.zeros(len(X)),  # benign
            2.0 * X[:, 4] + 0.3 * flags - 1.5,  # scan
            0.03 * X[:, 0] - 0.3 * X[:, 2] - 0.5,  # flood
            1.5 * (X[:, 1] > 2**24) + 0.7 * X[:, 7] + np.isnan(X[:, 5]) - 1.0,  # exfil
        ],
        axis=1,
    )
    scores += rng.gumbel(size=scores.shape)
    return scores.argmax(axis=1)


def split_points(model_json):
    """All (feature, float32 threshold) pairs used by the model's splits."""
    pairs = set()
    for tree in model_json["learner"]["gradient_booster"]["model"]["trees"]:
        for left, feat, cond in zip(tree["left_children"], tree["split_indices"], tree["split_conditions"]):
            if left != -1:
                pairs.add((feat, np.float32(cond)))
    return sorted(pairs)


def edge_values(c):
    """Values around a float32 threshold c that exercise the float32 '<' rule."""
    c32 = np.float32(c)
    lo = np.nextafter(c32, np.float32(-np.inf))
    hi = np.nextafter(c32, np.float32(np.inf))
    mid_lo = (float(lo) + float(c32)) / 2  # exact in float64
    mid_hi = (float(c32) + float(hi)) / 2
    vals = [float(c32), float(lo), float(hi)]
    for m in (mid_lo, mid_hi):
        vals += [m, np.nextafter(m, -np.inf), np.nextafter(m, np.inf)]
    return vals + [np.nan]


def eval_rows(rng, splits):
    base = synth(rng, N_RANDOM_EVAL)
    rows = [base]
    # One edge value per row on the split's feature, rest of the row random.
    for feat, c in splits:
        vals = edge_values(c)
        block = synth(rng, len(vals))
        block[:, feat] = vals
        rows.append(block)
    # Rows where every feature sits on (or next to) some threshold at once.
    by_feat = {}
    for feat, c in splits:
        by_feat.setdefault(feat, []).extend(edge_values(c))
    mixed = synth(rng, N_RANDOM_EVAL)
    for feat, vals in by_feat.items():
        pick = rng.random(len(mixed)) < 0.7
        mixed[pick, feat] = rng.choice(np.array(vals), pick.sum())
    rows.append(mixed)
    return np.concatenate(rows)


def fmt(v):
    """Shortest text that round-trips the float64 exactly; NaN as empty cell."""
    return "" if np.isnan(v) else repr(float(v))


def write_golden(name, X, proba):
    path = os.path.join(OUT, name + "_golden.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([f"f{i}" for i in range(X.shape[1])] + [f"p{k}" for k in range(proba.shape[1])])
        for x, p in zip(X, proba):
            w.writerow([fmt(v) for v in x] + [fmt(v) for v in p])


def write_contribs(name, booster, X):
    """XGBoost's approximate (Saabas) contributions; columns: row,class,c0..cN,bias."""
    contribs = booster.predict(
        xgb.DMatrix(X, missing=np.nan, feature_names=booster.feature_names),
        pred_contribs=True,
        approx_contribs=True,
    )
    if contribs.ndim == 2:
        contribs = contribs[:, None, :]
    path = os.path.join(OUT, name + "_contribs.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["row", "class"] + [f"c{i}" for i in range(X.shape[1])] + ["bias"])
        for r in range(contribs.shape[0]):
            for k in range(contribs.shape[1]):
                w.writerow([r, k] + [fmt(v) for v in contribs[r, k]])


def build(name, clf, labels, feature_names, seed):
    rng = np.random.default_rng(seed)
    X = synth(rng, N_TRAIN)
    clf.fit(X, labels(rng, X))
    booster = clf.get_booster()
    if feature_names:
        booster.feature_names = FEATURES
    model_path = os.path.join(OUT, name + "_model.json")
    booster.save_model(model_path)
    with open(model_path) as f:
        splits = split_points(json.load(f))
    E = eval_rows(rng, splits)
    # predict_proba hands float64 rows to XGBoost, which rounds them to
    # float32 internally: exactly the semantics the Go side emulates.
    proba = clf.predict_proba(E)
    write_golden(name, E, proba)
    write_contribs(name, booster, E[:N_CONTRIB_ROWS])
    print(f"{name}: {len(splits)} split points, {len(E)} eval rows, {booster.num_boosted_rounds()} rounds")


def main():
    os.makedirs(OUT, exist_ok=True)
    common = dict(n_estimators=50, max_depth=4, learning_rate=0.3, tree_method="hist", n_jobs=1, random_state=0)
    build(
        "binary",
        xgb.XGBClassifier(objective="binary:logistic", base_score=0.3, **common),
        binary_labels,
        feature_names=True,
        seed=1,
    )
    build(
        "multiclass",
        xgb.XGBClassifier(objective="multi:softprob", **common),
        multiclass_labels,
        feature_names=False,
        seed=2,
    )
    print("xgboost", xgb.__version__, "numpy", np.__version__)


if __name__ == "__main__":
    main()
