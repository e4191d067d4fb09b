#!/usr/bin/python3
"""Export per-window features of labeled captures with `netguardian analyze`.

    export.py --netguardian BIN --workdir DIR --out features.csv \
        --set NAME=DIR [--set NAME=DIR ...] [--public DIR] [--shifts 0,37,...]

For every capture named in DIR/ground_truth.tsv (and, with --public, every
capture of DIR/MANIFEST.tsv) and every time shift s, the capture is copied
with its timestamps moved by s seconds (editcap -t s) and replayed through
`netguardian analyze --no-detectors -features-csv`. Windows are aligned to
the epoch, so each shift cuts the same traffic into different 30 s and 180 s
windows: more, and differently placed, windows from the same captures. Every
output row keeps its capture set, file and shift, and its start/end are moved
back by the shift, so they can be joined with the ground truth's times.

Output: one CSV with columns set,pcap,shift_s,<analyze's columns>.
Public captures get set "public" and shift 0 only.
"""
import argparse
import csv
import hashlib
import os
import shutil
import subprocess
import sys


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run(cmd, cwd=None):
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit("export: %s failed (exit %d):\n%s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return p.stdout


def analyze(ng, workdir, pcap, shift):
    """Feature rows of pcap shifted by shift seconds, times shifted back."""
    src = os.path.abspath(pcap)  # analyze runs in workdir
    if shift:
        src = os.path.join(workdir, "shifted" + os.path.splitext(pcap)[1])
        run(["editcap", "-t", str(shift), pcap, src])
    out = os.path.join(workdir, "analyze-windows.csv")
    # analyze finds its plugins in bin/plugins relative to the directory it
    # runs in: workdir holds bin/netguardian and bin/plugins/capture-pcap.
    run([ng, "analyze", "--no-detectors", "-quiet", "-features-csv", out, src], cwd=workdir)
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    i_start, i_end = header.index("start"), header.index("end")
    for r in body:
        r[i_start] = str(int(r[i_start]) - shift)
        r[i_end] = str(int(r[i_end]) - shift)
    return header, body


def pcaps_of_set(d):
    gt = os.path.join(d, "ground_truth.tsv")
    if not os.path.exists(gt):
        sys.exit("export: %s has no ground_truth.tsv" % d)
    with open(gt, newline="") as f:
        names = sorted({r["pcap"] for r in csv.DictReader(f, delimiter="\t")})
    for n in names:
        if not os.path.exists(os.path.join(d, n)):
            sys.exit("export: %s lists %s, which is missing" % (gt, n))
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--netguardian", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", action="append", default=[], help="NAME=DIR of a labeled capture set")
    ap.add_argument("--public", help="folder with MANIFEST.tsv (evaluation only)")
    ap.add_argument("--shifts", default="0,37,74,111,148,5,42,79,116,153")
    ap.add_argument("--captures-out", help="write set,pcap,sha256 of every capture used here")
    a = ap.parse_args()
    shifts = [int(s) for s in a.shifts.split(",")]
    jobs = []  # (set, path, rel, shifts)
    for spec in a.set:
        name, _, d = spec.partition("=")
        for p in pcaps_of_set(d):
            jobs.append((name, os.path.join(d, p), p, shifts))
    if a.public:
        with open(os.path.join(a.public, "MANIFEST.tsv"), newline="") as f:
            for r in csv.DictReader(f, delimiter="\t"):
                jobs.append(("public", os.path.join(a.public, r["file"]), r["file"], [0]))
    header = None
    n = 0
    captures = []
    with open(a.out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        for k, (name, path, rel, sh) in enumerate(jobs):
            captures.append((name, rel, sha256(path)))
            for s in sh:
                h, body = analyze(a.netguardian, a.workdir, path, s)
                if header is None:
                    header = h
                    w.writerow(["set", "pcap", "shift_s"] + h)
                elif h != header:
                    sys.exit("export: %s: analyze wrote other columns than before" % path)
                for r in body:
                    w.writerow([name, rel, s] + r)
                    n += 1
            print("export: [%d/%d] %s/%s: %d shift(s)" % (k + 1, len(jobs), name, rel, len(sh)), file=sys.stderr)
    if a.captures_out:
        with open(a.captures_out, "w", newline="") as f:
            w = csv.writer(f, delimiter="\t", lineterminator="\n")
            w.writerow(["set", "pcap", "sha256"])
            w.writerows(captures)
    print("export: %d windows from %d captures -> %s" % (n, len(jobs), a.out), file=sys.stderr)


if __name__ == "__main__":
    main()
