"""Compare the models' metrics and write a report; log the winner's metrics."""

import argparse
import json
import pathlib

from headrace import Run

parser = argparse.ArgumentParser()
parser.add_argument("--metrics", required=True)
parser.add_argument("--output", required=True)
parser.add_argument(
    "--min_improvement",
    type=float,
    required=True,
    help="relative MSE improvement needed to prefer the complex model",
)
args = parser.parse_args()

metrics = {p.stem: json.loads(p.read_text()) for p in pathlib.Path(args.metrics).glob("*.json")}
base, linear = metrics["baseline"], metrics["linear"]
improvement = (base["mse"] - linear["mse"]) / base["mse"]
winner = "linear" if improvement >= args.min_improvement else "baseline"

lines = ["# Model comparison", "", "| model | MSE | MAE |", "|---|---|---|"]
lines += [f"| {m['model']} | {m['mse']:.4f} | {m['mae']:.4f} |" for m in metrics.values()]
lines += [
    "",
    f"Relative MSE improvement of linear over baseline: {improvement:.1%} "
    f"(threshold {args.min_improvement:.0%}).",
    f"Winner: **{winner}**.",
]
out = pathlib.Path(args.output)
out.mkdir(parents=True, exist_ok=True)
(out / "report.md").write_text("\n".join(lines) + "\n")
(out / "winner.json").write_text(json.dumps({"winner": winner, "improvement": improvement}))

run = Run.get_context()
run.log("winner", winner)
run.log("improvement", improvement)
run.log("best_mse", metrics[winner]["mse"])
print("\n".join(lines))
