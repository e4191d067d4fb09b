#!/usr/bin/python3
"""Train the bundled XGBoost detector model from exported window features.

    train.py --features features.csv --captures captures.tsv \
        --set NAME=DIR ... --cv-sets a,b,c --test-sets d --out MODEL_DIR

Reads the windows written by export.py, labels them from each set's
ground_truth.tsv (rules below and in REPORT.md), chooses hyperparameters and
the alert threshold by leave-one-capture-set-out cross-validation over the
--cv-sets (never looking at --test-sets), trains the final model on all
--cv-sets, evaluates it once on --test-sets (and on public captures, if the
features hold any), and writes MODEL_DIR/xgboost_model.json, labels.json and
REPORT.md.

Everything is seeded and single-threaded: the same inputs give the same model.
"""
import argparse
import collections
import csv
import ipaddress
import json
import math
import os
import platform
import sys

import numpy as np
import sklearn
import xgboost as xgb

CLASSES = [
    "normal",
    "port_scan",
    "syn_flood",
    "udp_flood",
    "icmp_flood",
    "brute_force",
    "slow_dos",
    "dns_amplification",
    "dns_tunnel",
    "data_exfiltration",
]
BENIGN = "normal"
WINDOWS = [30, 180]
# Every sdk feature but the TCP handshake latency: the lab's namespaces have
# microsecond RTTs that real networks never show, so a split on it would not
# carry over.
EXCLUDED_FEATURES = {"tcp_handshake_latency_ms"}
# Attack windows must overlap the attacker's active range by this much.
MIN_OVERLAP_S = 1.0
SEED = 0
# Smallest first: a bigger model must beat the best score by more than
# GRID_TOLERANCE to be chosen (fewer trees score faster in the plugin).
GRID = [
    dict(max_depth=4, n_estimators=100, learning_rate=0.15),
    dict(max_depth=6, n_estimators=100, learning_rate=0.15),
    dict(max_depth=4, n_estimators=300, learning_rate=0.05),
    dict(max_depth=6, n_estimators=300, learning_rate=0.05),
]
GRID_TOLERANCE = 0.002
COMMON = dict(
    objective="multi:softprob",
    tree_method="hist",
    subsample=0.8,
    colsample_bytree=0.8,
    min_child_weight=1,
    reg_lambda=1.0,
    max_bin=256,
    random_state=SEED,
    n_jobs=1,
)
THRESHOLDS = [round(x, 2) for x in np.arange(0.40, 0.991, 0.01)]
# The target is <= 0.5 % of benign windows flagged; the threshold is chosen
# for half of that in cross-validation, a margin for networks unlike the lab.
TARGET_BENIGN_FP = 0.005
MAX_BENIGN_FP = TARGET_BENIGN_FP / 2


# ---------------------------------------------------------------- data


def load_features(path):
    with open(path, newline="") as f:
        r = csv.reader(f)
        header = next(r)
        rows = list(r)
    meta_cols = ["set", "pcap", "shift_s", "sensor", "window_s", "src", "start", "end", "partial", "estimated"]
    for c in meta_cols:
        if c not in header:
            sys.exit("train: %s lacks column %s" % (path, c))
    feats = [h for h in header if h not in meta_cols]
    idx = {h: i for i, h in enumerate(header)}
    X = np.array([[float(r[idx[h]]) if r[idx[h]] != "" else np.nan for h in feats] for r in rows], dtype=np.float64)
    meta = [
        dict(
            set=r[idx["set"]],
            pcap=r[idx["pcap"]],
            shift=int(r[idx["shift_s"]]),
            window=int(float(r[idx["window_s"]])),
            src=r[idx["src"]],
            start=float(r[idx["start"]]),
            end=float(r[idx["end"]]),
            partial=r[idx["partial"]] == "true",
        )
        for r in rows
    ]
    return feats, X, meta


def load_ground_truth(sets):
    gt = {}
    for name, d in sets.items():
        with open(os.path.join(d, "ground_truth.tsv"), newline="") as f:
            for r in csv.DictReader(f, delimiter="\t"):
                gt[(name, r["pcap"], r["src_ip"])] = r
    return gt


def label_window(m, gt, pkts):
    """(class, group) of a window, or (None, reason) when it is left out."""
    if pkts == 0:
        return None, "inbound-only (packets_total = 0)"
    g = gt.get((m["set"], m["pcap"], m["src"]))
    if g is None:
        # The lab's interfaces send IPv6 neighbor discovery / MLD from their
        # link-local addresses; ground_truth.tsv lists IPv4 sources only.
        if ipaddress.ip_address(m["src"]).is_link_local:
            return BENIGN, "ipv6_link_local"
        return None, "source not in ground truth"
    role = g["role"]
    if role in ("benign_client",):
        return BENIGN, "benign_client"
    if role in ("victim_server",):
        return BENIGN, "victim_server"
    if role in ("attacker", "reflector"):
        first, last = float(g["first_pkt_epoch"]), float(g["last_pkt_epoch"])
        overlap = min(m["end"], last) - max(m["start"], first)
        if overlap < MIN_OVERLAP_S:
            return None, "attack window overlapping the attack < %gs" % MIN_OVERLAP_S
        if g["class"] not in CLASSES:
            return None, "unknown class %s" % g["class"]
        return g["class"], role
    return None, "role %s" % role


def public_labels(public_dir):
    """file -> (class, attacker ip set or None, victim ip set or None)."""
    out = {}
    with open(os.path.join(public_dir, "MANIFEST.tsv"), newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            out[r["file"]] = (r["class_label"], parse_ips(r["attacker_ips"]), parse_ips(r["victim_ips"]), r)
    return out


def parse_ips(s):
    ips = set()
    for tok in s.replace(",", " ").replace("(", " ").replace(")", " ").split():
        try:
            ips.add(str(ipaddress.ip_address(tok)))
        except ValueError:
            pass
    return ips or None


# ---------------------------------------------------------------- model


def class_weights(y):
    counts = np.bincount(y, minlength=len(CLASSES)).astype(float)
    w = np.where(counts > 0, len(y) / (len(CLASSES) * np.maximum(counts, 1)), 0.0)
    return w[y]


def fit(X, y, params, feats):
    clf = xgb.XGBClassifier(**COMMON, **params)
    clf.fit(X, y, sample_weight=class_weights(y))
    return clf


def decide(P, t):
    """The detector's decision: the top class if it is an attack with p >= t, else normal."""
    top = P.argmax(axis=1)
    ok = P[np.arange(len(P)), top] >= t
    return np.where(ok, top, CLASSES.index(BENIGN))


def prf(y, yhat):
    res = []
    for k in range(len(CLASSES)):
        tp = int(np.sum((y == k) & (yhat == k)))
        fp = int(np.sum((y != k) & (yhat == k)))
        fn = int(np.sum((y == k) & (yhat != k)))
        p = tp / (tp + fp) if tp + fp else float("nan")
        r = tp / (tp + fn) if tp + fn else float("nan")
        f = 2 * p * r / (p + r) if tp else (0.0 if (tp + fp + fn) else float("nan"))
        res.append((p, r, f, int(np.sum(y == k))))
    return res


def macro_f1(y, yhat):
    fs = [f for (_, _, f, n) in prf(y, yhat) if n > 0]
    return float(np.mean(fs)) if fs else float("nan")


def benign_fp(y, yhat):
    b = y == CLASSES.index(BENIGN)
    if not b.any():
        return float("nan"), 0, 0
    flagged = int(np.sum(yhat[b] != CLASSES.index(BENIGN)))
    return flagged / int(b.sum()), flagged, int(b.sum())


def confusion(y, yhat):
    m = np.zeros((len(CLASSES), len(CLASSES)), dtype=int)
    for a, b in zip(y, yhat):
        m[a, b] += 1
    return m


# ---------------------------------------------------------------- report


def fmt(v, d=3):
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else ("%.*f" % (d, v))


def md_prf(y, yhat):
    lines = ["| class | precision | recall | F1 | windows |", "|---|---:|---:|---:|---:|"]
    for k, (p, r, f, n) in enumerate(prf(y, yhat)):
        lines.append("| %s | %s | %s | %s | %d |" % (CLASSES[k], fmt(p), fmt(r), fmt(f), n))
    lines.append("| **macro (classes present)** | | | **%s** | %d |" % (fmt(macro_f1(y, yhat)), len(y)))
    return "\n".join(lines)


def md_confusion(y, yhat):
    m = confusion(y, yhat)
    present = [k for k in range(len(CLASSES)) if m[k].sum() or m[:, k].sum()]
    short = {c: c.replace("_", " ") for c in CLASSES}
    lines = ["| true \\ predicted | " + " | ".join(short[CLASSES[k]] for k in present) + " |"]
    lines.append("|---|" + "---:|" * len(present))
    for a in present:
        lines.append("| %s | " % CLASSES[a] + " | ".join(str(m[a, b]) if m[a, b] else "·" for b in present) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--features", required=True)
    ap.add_argument("--captures", required=True, help="set,pcap,sha256 list written by export.py")
    ap.add_argument("--set", action="append", default=[], help="NAME=DIR of a labeled capture set")
    ap.add_argument("--cv-sets", required=True)
    ap.add_argument("--test-sets", required=True)
    ap.add_argument("--public", help="MANIFEST.tsv folder, for the public-capture evaluation")
    ap.add_argument("--out", required=True)
    ap.add_argument("--command", default="", help="how this run was started, for the report")
    ap.add_argument("--golden-out", help="write a few test windows with XGBoost's probabilities (Go test data)")
    a = ap.parse_args()

    os.makedirs(a.out, exist_ok=True)
    sets = dict(s.split("=", 1) for s in a.set)
    cv_sets = a.cv_sets.split(",")
    test_sets = a.test_sets.split(",")
    for s in cv_sets + test_sets:
        if s not in sets:
            sys.exit("train: set %s has no --set NAME=DIR" % s)
    if set(cv_sets) & set(test_sets):
        sys.exit("train: a set is in both --cv-sets and --test-sets")

    all_feats, Xfull, meta = load_features(a.features)
    feats = [f for f in all_feats if f not in EXCLUDED_FEATURES]
    Xall = Xfull[:, [all_feats.index(f) for f in feats]]
    pk = feats.index("packets_total")
    gt = load_ground_truth(sets)

    keep, y, groups, reasons = [], [], [], collections.Counter()
    kept_by = collections.Counter()
    for i, m in enumerate(meta):
        if m["set"] == "public" or m["window"] not in WINDOWS:
            continue
        cls, why = label_window(m, gt, Xall[i, pk])
        if cls is None:
            reasons[(m["set"], m["window"], why)] += 1
            continue
        keep.append(i)
        y.append(CLASSES.index(cls))
        groups.append(why)
        kept_by[(m["set"], m["window"], cls)] += 1
    keep = np.array(keep)
    X, y, groups = Xall[keep], np.array(y), np.array(groups)
    M = [meta[i] for i in keep]
    set_of = np.array([m["set"] for m in M])
    win = np.array([m["window"] for m in M])
    shift0 = np.array([m["shift"] == 0 for m in M])
    in_cv = np.isin(set_of, cv_sets)
    in_test = np.isin(set_of, test_sets)
    # The benign false-positive rate counts hosts' windows (benign clients,
    # victim servers, attackers' windows excluded by label): the many quiet
    # link-local windows would only dilute it.
    host = groups != "ipv6_link_local"

    # ---- model selection: leave one capture set out over the CV sets
    print("train: %d labeled windows (%d CV, %d test)" % (len(y), in_cv.sum(), in_test.sum()), file=sys.stderr)
    cv_results = []
    preds = []
    for params in GRID:
        P = np.zeros((len(y), len(CLASSES)))
        for held in cv_sets:
            tr = in_cv & (set_of != held)
            va = set_of == held
            if not va.any():
                continue
            P[va] = fit(X[tr], y[tr], params, feats).predict_proba(X[va])
        pred = decide(P[in_cv], 0.0)
        score = macro_f1(y[in_cv], pred)
        cv_results.append((params, score))
        preds.append(P)
        print("train: cv %s macro-F1 %.4f" % (params, score), file=sys.stderr)
    top = max(s for _, s in cv_results)
    k = next(i for i, (_, s) in enumerate(cv_results) if s >= top - GRID_TOLERANCE)
    params, cv_f1, Pcv = cv_results[k][0], cv_results[k][1], preds[k]

    # ---- threshold: highest macro-F1 with benign FP <= 0.5% at every window size (CV predictions)
    thr_rows = []
    chosen = None
    for t in THRESHOLDS:
        pred = decide(Pcv[in_cv], t)
        fps = []
        for w in WINDOWS:
            sel = in_cv & (win == w) & host
            fps.append(benign_fp(y[sel], decide(Pcv[sel], t))[0])
        f1 = macro_f1(y[in_cv], pred)
        thr_rows.append((t, f1, fps))
        if all(fp <= MAX_BENIGN_FP for fp in fps) and (chosen is None or f1 > chosen[1] + 1e-9):
            chosen = (t, f1, fps)
    if chosen is None:
        chosen = max(thr_rows, key=lambda r: r[0])
        print("train: no threshold keeps benign FP <= %.1f%% in CV; using %.2f" % (100 * MAX_BENIGN_FP, chosen[0]), file=sys.stderr)
    min_score = chosen[0]

    # ---- final model on all CV sets, evaluated once on the test sets
    final = fit(X[in_cv], y[in_cv], params, feats)
    booster = final.get_booster()
    with open(os.path.join(a.out, "labels.json"), "w") as f:
        json.dump(
            {"classes": CLASSES, "benign": BENIGN, "feature_names": feats, "windows": WINDOWS, "min_score": min_score},
            f,
            indent=2,
        )
        f.write("\n")
    Pt = final.predict_proba(X[in_test]) if in_test.any() else np.zeros((0, len(CLASSES)))

    # ---- public captures (evaluation only)
    public_rows = []
    if a.public:
        plabels = public_labels(a.public)
        pidx = [i for i, m in enumerate(meta) if m["set"] == "public" and m["window"] in WINDOWS and Xall[i, pk] > 0]
        if pidx:
            Pp = final.predict_proba(Xall[pidx])
            pred = decide(Pp, min_score)
            by_file = collections.defaultdict(list)
            for j, i in enumerate(pidx):
                by_file[meta[i]["pcap"]].append((meta[i], pred[j], Pp[j]))
            for fname in sorted(by_file):
                cls, att, vic, _ = plabels[fname]
                for w in WINDOWS:
                    items = [(m, p) for (m, p, _) in by_file[fname] if m["window"] == w]
                    if cls == BENIGN:
                        sel = items
                    elif att:
                        sel = [(m, p) for (m, p) in items if m["src"] in att]
                    elif vic:
                        sel = [(m, p) for (m, p) in items if m["src"] not in vic]
                    else:
                        sel = []
                    if not sel:
                        continue
                    preds = collections.Counter(CLASSES[p] for (_, p) in sel)
                    hit = preds.get(cls, 0)
                    flagged = sum(v for k, v in preds.items() if k != BENIGN)
                    public_rows.append((fname, cls, w, len(sel), hit, flagged, preds))

    if a.golden_out and len(Pt):
        write_golden(a.golden_out, all_feats, Xfull[keep[in_test]], y[in_test], win[in_test], shift0[in_test], Pt, min_score)

    # Names last: predictions above use plain arrays.
    booster.feature_names = feats
    booster.save_model(os.path.join(a.out, "xgboost_model.json"))
    write_report(a, sets, cv_sets, test_sets, feats, reasons, kept_by, params, cv_results, cv_f1, thr_rows, chosen,
                 y, win, groups, shift0, in_cv, in_test, Pt, min_score, public_rows, booster)
    print("train: wrote %s (min_score %.2f)" % (a.out, min_score), file=sys.stderr)


def write_golden(path, names, X, y, win, shift0, P, min_score, per_class=4):
    """A few unshifted test windows per (class, window size), with every sdk
    feature, XGBoost's probabilities and the detector's expected decision."""
    picked = collections.Counter()
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["class", "window_s", "decision"] + ["p_" + c for c in CLASSES] + names)
        dec = decide(P, min_score)
        for i in range(len(y)):
            key = (y[i], win[i])
            if not shift0[i] or picked[key] >= (2 * per_class if CLASSES[y[i]] == BENIGN else per_class):
                continue
            picked[key] += 1
            w.writerow([CLASSES[y[i]], win[i], CLASSES[dec[i]]] + [repr(float(p)) for p in P[i]]
                       + ["" if np.isnan(v) else repr(float(v)) for v in X[i]])


def write_report(a, sets, cv_sets, test_sets, feats, reasons, kept_by, params, cv_results, cv_f1, thr_rows, chosen,
                 y, win, groups, shift0, in_cv, in_test, Pt, min_score, public_rows, booster):
    yt, wt, gt_, s0 = y[in_test], win[in_test], groups[in_test], shift0[in_test]
    dt = decide(Pt, min_score) if len(Pt) else np.zeros(0, dtype=int)
    L = []
    add = L.append
    add("# Shipped XGBoost model: training report\n")
    add("Generated by `plugins/detector-xgboost/training/make_model.sh` (train.py); do not edit by hand.\n")
    add("## Summary\n")
    add("Held-out test captures (%s), alerts at `min_score` = **%.2f** (the plugin's default):\n" % (", ".join(test_sets), min_score))
    add("| window | macro-F1 | benign windows flagged (clients + servers) | of which victim-server windows | test windows |")
    add("|---|---:|---:|---:|---:|")
    ht = gt_ != "ipv6_link_local"
    for w in WINDOWS:
        s = wt == w
        fp, fl, nb = benign_fp(yt[s & ht], dt[s & ht])
        vs = s & (gt_ == "victim_server")
        vfp, vfl, vnb = benign_fp(yt[vs], dt[vs])
        add("| %ds | **%s** | %s%% (%d of %d) | %s%% (%d of %d) | %d |" % (
            w, fmt(macro_f1(yt[s], dt[s])), fmt(100 * fp if nb else float("nan"), 2), fl, nb,
            fmt(100 * vfp if vnb else float("nan"), 2), vfl, vnb, int(s.sum())))
    add("\nTargets: macro-F1 ≥ 0.95 on 30 s windows; benign windows flagged ≤ 0.5 %. The benign rate counts the "
        "windows of benign clients and victim servers; IPv6 link-local windows (below) are reported separately.")
    add("Test windows come from every time shift of the test captures (see *Windows*); "
        "the same numbers for unshifted captures only are under *Test results*.\n")

    add("## Data\n")
    add("Capture sets (`ground_truth.tsv` format of `../shared/data/generated/`):\n")
    add("| set | folder | used for |")
    add("|---|---|---|")
    for name, d in sets.items():
        role = "cross-validation + final training" if name in cv_sets else ("test (held out)" if name in test_sets else "unused")
        add("| %s | `%s` | %s |" % (name, d, role))
    if a.public:
        add("| public | `%s` | extra evaluation only |" % a.public)
    add("\nEvery capture used, with its SHA-256:\n")
    add("| set | capture | sha256 |")
    add("|---|---|---|")
    with open(a.captures, newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            add("| %s | %s | `%s` |" % (r["set"], r["pcap"], r["sha256"]))
    add("\n### Windows\n")
    add("Features come from `netguardian analyze --no-detectors -features-csv` (export.py). Windows are "
        "aligned to the epoch, so each capture is replayed 10 times with its timestamps moved by "
        "0, 37, 74, 111, 148, 5, 42, 79, 116 and 153 s (`editcap -t`): every shift cuts the same traffic "
        "into differently placed 30 s and 180 s windows (the offsets cover both window sizes' phases). "
        "Public captures are replayed once.\n")
    add("Labeling, per (capture, source IP, window):\n")
    add("- a source with role `attacker` (or `reflector`, for DNS amplification) gets its attack class when "
        "the window overlaps its active range [first packet, last packet] by at least %g s; windows that touch "
        "the attack for less are left out (neither attack nor normal);" % MIN_OVERLAP_S)
    add("- `benign_client` windows are `normal`;")
    add("- `victim_server` windows (the victim's responses: SYN-ACKs, RSTs, echo replies, ICMP unreachables, "
        "HTTP bodies) are `normal` too: a sensor sees servers answer, and answering is not an attack. "
        "They are kept in the benign false-positive rate and also reported on their own;")
    add("- sources missing from the ground truth with an IPv6 link-local address (fe80::/10: the kernel's "
        "neighbor discovery and MLD reports when the lab's interfaces come up) are `normal` (group `ipv6_link_local`);")
    add("- `spoofed_source` (reflector-side capture: queries carrying the victim's forged address) and other "
        "sources missing from the ground truth (e.g. the generated set's drop server 10.99.0.200) are left out;")
    add("- windows in which the source sent nothing (`packets_total` = 0: it was only seen as a destination) "
        "are left out. The detector skips them too: every class describes what a source sends.\n")
    add("Labeled windows per set:\n")
    add("| set | window | " + " | ".join(CLASSES) + " |")
    add("|---|---|" + "---:|" * len(CLASSES))
    for name in sets:
        for w in WINDOWS:
            add("| %s | %ds | " % (name, w) + " | ".join(str(kept_by.get((name, w, c), 0)) for c in CLASSES) + " |")
    add("\nLeft out:\n")
    add("| set | window | reason | windows |")
    add("|---|---|---|---:|")
    for (s, w, why), n in sorted(reasons.items()):
        add("| %s | %ds | %s | %d |" % (s, w, why, n))

    add("\n## Split and training\n")
    add("- Split **by capture set**: each set is an independent lab run (its own seed, tool parameters, "
        "attacker addresses and capture files), so no capture, attack run or attacker address of the test "
        "set(s) %s is ever seen in training or tuning." % ", ".join(test_sets))
    add("- Hyperparameters and the alert threshold were chosen by leave-one-set-out cross-validation over "
        "%s (each fold trains on the other sets and predicts the held-out set). The final model is trained on "
        "all of them with the chosen settings; the test set(s) were scored once, after everything was fixed." % ", ".join(cv_sets))
    add("- Features (%d, in model input order): %s. Left out: %s (the lab's sub-millisecond RTTs would not "
        "carry over to real networks)." % (len(feats), ", ".join("`%s`" % f for f in feats), ", ".join(sorted(EXCLUDED_FEATURES))))
    add("- Classes are balanced with sample weights n / (k · n_class). Missing values (empty CSV cells, e.g. "
        "no inter-arrival time with a single packet) stay NaN and follow XGBoost's default directions.")
    add("- XGBoost %s (Python %s, NumPy %s, scikit-learn %s), `XGBClassifier` with %s." % (
        xgb.__version__, platform.python_version(), np.__version__, sklearn.__version__,
        ", ".join("%s=%s" % (k, v) for k, v in sorted({**COMMON, **params}.items()))))
    add("- Rounds: %d, trees: %d (one per class and round)." % (booster.num_boosted_rounds(), booster.num_boosted_rounds() * len(CLASSES)))
    add("\nCross-validation (macro-F1 of the top class, all windows of the held-out sets); the smallest model "
        "within %g of the best score is chosen:\n" % GRID_TOLERANCE)
    add("| parameters | CV macro-F1 |")
    add("|---|---:|")
    for p, s in cv_results:
        add("| %s | %s%s |" % (", ".join("%s=%s" % kv for kv in sorted(p.items())), fmt(s, 4), " ← chosen" if p == params else ""))
    add("\n### Threshold (`min_score`)\n")
    add("Chosen on the cross-validation predictions: the threshold with the highest macro-F1 among those "
        "that flag at most %.2f %% of benign client and victim server windows at every window size (half the %.1f %% "
        "target, as a margin for networks unlike the lab). Alerts need the top class to be an "
        "attack with probability ≥ `min_score`; below it the window counts as normal.\n" % (100 * MAX_BENIGN_FP, 100 * TARGET_BENIGN_FP))
    add("| min_score | CV macro-F1 | CV benign FP 30s | CV benign FP 180s |")
    add("|---:|---:|---:|---:|")
    for t, f1, fps in thr_rows:
        if t in (0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99) or t == chosen[0]:
            add("| %.2f%s | %s | %s%% | %s%% |" % (t, " ←" if t == chosen[0] else "", fmt(f1), fmt(100 * fps[0], 2), fmt(100 * fps[1], 2)))

    add("\n## Test results (held-out sets: %s)\n" % ", ".join(test_sets))
    for w in WINDOWS:
        s = wt == w
        add("### %ds windows, min_score %.2f\n" % (w, min_score))
        add(md_prf(yt[s], dt[s]))
        add("\nConfusion matrix (rows: truth, columns: decision):\n")
        add(md_confusion(yt[s], dt[s]))
        add("")
    add("### Unshifted test captures only\n")
    add("| window | macro-F1 | benign flagged | windows |")
    add("|---|---:|---:|---:|")
    for w in WINDOWS:
        s = (wt == w) & s0
        fp, fl, nb = benign_fp(yt[s & ht], dt[s & ht])
        add("| %ds | %s | %d of %d | %d |" % (w, fmt(macro_f1(yt[s], dt[s])), fl, nb, int(s.sum())))
    add("\n### Benign false positives per window size\n")
    add("| window | group | flagged | windows | rate |")
    add("|---|---|---:|---:|---:|")
    for w in WINDOWS:
        for grp in ("benign_client", "victim_server", "ipv6_link_local"):
            s = (wt == w) & (gt_ == grp)
            fp, fl, nb = benign_fp(yt[s], dt[s])
            add("| %ds | %s | %d | %d | %s%% |" % (w, grp, fl, nb, fmt(100 * fp if nb else float("nan"), 2)))
    add("\nAt other thresholds (test):\n")
    add("| min_score | macro-F1 30s | benign FP 30s | macro-F1 180s | benign FP 180s |")
    add("|---:|---:|---:|---:|---:|")
    for t in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
        d = decide(Pt, t) if len(Pt) else dt
        cells = []
        for w in WINDOWS:
            s = wt == w
            cells += [fmt(macro_f1(yt[s], d[s])), fmt(100 * benign_fp(yt[s & ht], d[s & ht])[0], 2) + "%"]
        add("| %.2f | %s |" % (t, " | ".join(cells)))

    if public_rows:
        add("\n## Public captures (extra evaluation, not used for training or tuning)\n")
        add("Labels from `MANIFEST.tsv`. Attack files: windows of the listed attacker addresses (or, when only "
            "the victim is known, of every other source); normal files: every source. *Correct* = the decision "
            "is the file's class; *flagged* = any alert. Read with `public/README.md`'s caveats: many files are "
            "tiny, one-way, anonymized, spoofed (1–2 packets per source) or tool-generated at line rate, far from "
            "the lab's traffic.\n")
        add("| file | class | window | windows | correct | flagged | decisions |")
        add("|---|---|---|---:|---:|---:|---|")
        tot = collections.Counter()
        for fname, cls, w, n, hit, flagged, preds in public_rows:
            add("| %s | %s | %ds | %d | %d | %d | %s |" % (fname, cls, w, n, hit, flagged,
                ", ".join("%s %d" % kv for kv in preds.most_common())))
            key = "normal" if cls == BENIGN else "attack"
            tot[(key, w, "n")] += n
            tot[(key, w, "hit")] += hit
            tot[(key, w, "flagged")] += flagged
        add("")
        for w in WINDOWS:
            files = collections.Counter()
            for fname, cls, ww, n, hit, flagged, preds in public_rows:
                if ww == w and cls != BENIGN:
                    files["all"] += 1
                    files["hit"] += hit > 0
                    files["flagged"] += flagged > 0
            if files["all"]:
                add("- %ds, attack files: %d of %d files have at least one attacker window with the file's class, "
                    "%d at least one alert." % (w, files["hit"], files["all"], files["flagged"]))
        for w in WINDOWS:
            if tot[("normal", w, "n")]:
                add("- %ds, normal files: %d of %d windows flagged (%s%%)." % (w, tot[("normal", w, "flagged")], tot[("normal", w, "n")],
                    fmt(100 * tot[("normal", w, "flagged")] / tot[("normal", w, "n")], 1)))
            if tot[("attack", w, "n")]:
                add("- %ds, attack files: %d of %d attacker windows get the file's class, %d flagged at all." % (
                    w, tot[("attack", w, "hit")], tot[("attack", w, "n")], tot[("attack", w, "flagged")]))

    add("\n## Reproduce\n")
    add("```sh\n%s\n```\n" % (a.command or "plugins/detector-xgboost/training/make_model.sh"))
    add("Same captures and same tool versions give a byte-identical `xgboost_model.json` (seed %d, one thread)." % SEED)
    with open(os.path.join(a.out, "REPORT.md"), "w") as f:
        f.write("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
