"""Train two models on the training split with scikit-learn: a mean baseline and a linear
regression. Runs in the example's own environment (numpy + scikit-learn, see pipeline.py),
which the runner's interpreter does not have."""

import argparse
import json
import pathlib

import numpy as np
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression

from headrace import Run

parser = argparse.ArgumentParser()
parser.add_argument("--input", required=True, help="the data set (CSV: x1, x2, y, split)")
parser.add_argument("--output", required=True, help="directory for the trained models")
args = parser.parse_args()

data = np.genfromtxt(args.input, delimiter=",", names=True, dtype=None, encoding="utf-8")
train = data[data["split"] == "train"]
x = np.column_stack([train["x1"], train["x2"]])
y = train["y"]

baseline = DummyRegressor(strategy="mean").fit(x, y)
linear = LinearRegression().fit(x, y)

out = pathlib.Path(args.output)
out.mkdir(parents=True, exist_ok=True)
(out / "baseline.json").write_text(
    json.dumps({"kind": "mean", "value": float(baseline.constant_.ravel()[0])})
)
weights = [float(linear.intercept_), *map(float, linear.coef_)]
(out / "linear.json").write_text(json.dumps({"kind": "linear", "weights": weights}))
Run.get_context().log("train_rows", len(train))
print(f"trained on {len(train)} rows with scikit-learn; linear weights {np.round(weights, 3)}")
