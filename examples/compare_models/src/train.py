"""Train two models on the training split: a mean baseline and a least-squares linear model.

Standard library only, so the example runs in the default environment.
"""

import argparse
import csv
import json
import pathlib

from headrace import Run

parser = argparse.ArgumentParser()
parser.add_argument("--input", required=True, help="the data set (CSV: x1, x2, y, split)")
parser.add_argument("--output", required=True, help="directory for the trained models")
args = parser.parse_args()

with open(args.input, newline="") as f:
    rows = [r for r in csv.DictReader(f) if r["split"] == "train"]
xs = [(1.0, float(r["x1"]), float(r["x2"])) for r in rows]
ys = [float(r["y"]) for r in rows]

# Normal equations (X'X) w = X'y for three coefficients, solved by Gaussian elimination.
n = 3
a = [
    [sum(x[i] * x[j] for x in xs) for j in range(n)]
    + [sum(x[i] * y for x, y in zip(xs, ys, strict=True))]
    for i in range(n)
]
for col in range(n):
    pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
    a[col], a[pivot] = a[pivot], a[col]
    for r in range(n):
        if r != col:
            factor = a[r][col] / a[col][col]
            a[r] = [v - factor * p for v, p in zip(a[r], a[col], strict=True)]
weights = [a[i][n] / a[i][i] for i in range(n)]

out = pathlib.Path(args.output)
out.mkdir(parents=True, exist_ok=True)
(out / "baseline.json").write_text(json.dumps({"kind": "mean", "value": sum(ys) / len(ys)}))
(out / "linear.json").write_text(json.dumps({"kind": "linear", "weights": weights}))
Run.get_context().log("train_rows", len(rows))
print(f"trained on {len(rows)} rows; linear weights {[round(w, 3) for w in weights]}")
