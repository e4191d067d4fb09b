#!/usr/bin/env bash
# Rebuilds the shipped model (plugins/detector-xgboost/model/) from labeled
# captures: builds netguardian, exports window features of every capture
# (export.py), trains and evaluates (train.py), writes xgboost_model.json,
# labels.json and REPORT.md. Run from anywhere; `make model` calls it.
#
# Inputs (environment, with defaults):
#   NG_GENERATED  ../shared/data/generated      capture set "generated"
#   NG_LAB_DATA   ../lab-data                   lab sets (examples/lab/lab.sh): one folder per set
#   NG_LAB_SETS   set1,...,set5                 which folders of NG_LAB_DATA to use
#   NG_CV_SETS    generated,set1,set2,set3      training + cross-validation sets
#   NG_TEST_SETS  set4,set5                     held-out test sets
#   NG_PUBLIC     ../shared/data/public         public captures, evaluation only (skipped if absent)
#   NG_MODEL_OUT  <plugin>/model                where the model goes
#   NG_GOLDEN_OUT <plugin>/testdata/windows.csv test windows with XGBoost's probabilities (Go tests)
#   NG_KEEP_FEATURES                            if set, copy the exported features CSV (and .captures.tsv) there
# Needs: go, editcap (wireshark-common), /usr/bin/python3 with python3-xgboost
# (1.7.4), python3-sklearn, python3-numpy.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
# Data paths below are relative to the repository's root (the shared data
# and the lab sets live beside the repository, not in it).
cd "$ROOT"
PY=/usr/bin/python3
NG_GENERATED=${NG_GENERATED:-../shared/data/generated}
NG_LAB_DATA=${NG_LAB_DATA:-../lab-data}
NG_LAB_SETS=${NG_LAB_SETS:-set1,set2,set3,set4,set5}
NG_CV_SETS=${NG_CV_SETS:-generated,set1,set2,set3}
NG_TEST_SETS=${NG_TEST_SETS:-set4,set5}
NG_PUBLIC=${NG_PUBLIC:-../shared/data/public}
NG_MODEL_OUT=${NG_MODEL_OUT:-$ROOT/plugins/detector-xgboost/model}
NG_GOLDEN_OUT=${NG_GOLDEN_OUT:-$ROOT/plugins/detector-xgboost/testdata/windows.csv}

die() { echo "make_model: $*" >&2; exit 1; }
command -v go >/dev/null || die "go not found"
command -v editcap >/dev/null || die "editcap not found (apt-get install wireshark-common)"
"$PY" -c 'import xgboost, sklearn, numpy' 2>/dev/null ||
	die "$PY lacks xgboost/sklearn/numpy (apt-get install python3-xgboost python3-sklearn python3-numpy)"

SETS=()
[[ -f $NG_GENERATED/ground_truth.tsv ]] || die "$NG_GENERATED/ground_truth.tsv not found (set NG_GENERATED)"
SETS+=(--set "generated=$NG_GENERATED")
IFS=',' read -r -a LAB <<<"$NG_LAB_SETS"
for s in "${LAB[@]}"; do
	[[ -f $NG_LAB_DATA/$s/ground_truth.tsv ]] ||
		die "$NG_LAB_DATA/$s/ground_truth.tsv not found: make it with examples/lab/lab.sh (see $HERE/README.md)"
	SETS+=(--set "$s=$NG_LAB_DATA/$s")
done
PUBLIC=()
if [[ -f $NG_PUBLIC/MANIFEST.tsv ]]; then
	PUBLIC=(--public "$NG_PUBLIC")
else
	echo "make_model: $NG_PUBLIC/MANIFEST.tsv not found; skipping the public-capture evaluation" >&2
fi

WORK=$(mktemp -d /tmp/ng-make-model.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/bin/plugins"
echo "make_model: building netguardian and capture-pcap" >&2
(cd "$ROOT" && go build -trimpath -o "$WORK/bin/netguardian" ./cmd/netguardian &&
	go build -trimpath -o "$WORK/bin/plugins/capture-pcap" ./plugins/capture-pcap)

"$PY" "$HERE/export.py" --netguardian "$WORK/bin/netguardian" --workdir "$WORK" \
	--out "$WORK/all-windows.csv" --captures-out "$WORK/captures.tsv" "${SETS[@]}" "${PUBLIC[@]}"

if [[ -n ${NG_KEEP_FEATURES:-} ]]; then
	cp "$WORK/all-windows.csv" "$NG_KEEP_FEATURES"
	cp "$WORK/captures.tsv" "$NG_KEEP_FEATURES.captures.tsv"
fi

CMD="NG_GENERATED=$NG_GENERATED NG_LAB_DATA=$NG_LAB_DATA NG_LAB_SETS=$NG_LAB_SETS NG_CV_SETS=$NG_CV_SETS NG_TEST_SETS=$NG_TEST_SETS NG_PUBLIC=$NG_PUBLIC plugins/detector-xgboost/training/make_model.sh"
"$PY" "$HERE/train.py" --features "$WORK/all-windows.csv" --captures "$WORK/captures.tsv" "${SETS[@]}" "${PUBLIC[@]}" \
	--cv-sets "$NG_CV_SETS" --test-sets "$NG_TEST_SETS" --out "$NG_MODEL_OUT" --command "$CMD" \
	--golden-out "$NG_GOLDEN_OUT"
echo "make_model: model in $NG_MODEL_OUT (see REPORT.md)" >&2
