"""Score both models on the held-out split: predictions and error metrics per model.

The data comes as a file (``--data``) or as the registered tabular dataset ``test_data``
(``dataset.as_named_input("test_data")``), read with ``to_pandas_dataframe()``.
"""

import argparse
import csv
import json
import pathlib

from headrace import Run

parser = argparse.ArgumentParser()
parser.add_argument("--data", help="the data set as a CSV file; else the test_data dataset")
parser.add_argument("--models", required=True)
parser.add_argument("--output", required=True)
args = parser.parse_args()

if args.data:
    with open(args.data, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "test"]
else:
    frame = Run.get_context().input_datasets["test_data"].to_pandas_dataframe()
    rows = frame[frame["split"] == "test"].to_dict("records")


def predict(model: dict, x1: float, x2: float) -> float:
    if model["kind"] == "mean":
        return model["value"]
    w = model["weights"]
    return w[0] + w[1] * x1 + w[2] * x2


out = pathlib.Path(args.output)
out.mkdir(parents=True, exist_ok=True)
for path in sorted(pathlib.Path(args.models).glob("*.json")):
    model = json.loads(path.read_text())
    errors = [predict(model, float(r["x1"]), float(r["x2"])) - float(r["y"]) for r in rows]
    metrics = {
        "model": path.stem,
        "rows": len(rows),
        "mse": sum(e * e for e in errors) / len(errors),
        "mae": sum(abs(e) for e in errors) / len(errors),
    }
    (out / f"{path.stem}.json").write_text(json.dumps(metrics))
    print(f"{path.stem}: mse {metrics['mse']:.3f} mae {metrics['mae']:.3f}")
