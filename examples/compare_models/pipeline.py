"""The seed's compare-models pipeline on headrace: train, extract, compare.

Creates a small synthetic data set (no downloads), uploads it to the default datastore,
reads it through a DataReference, passes models and metrics along with PipelineData, and ends
in a comparison report. The training step declares its own environment (numpy and
scikit-learn), built once by the image builder. Run it against a running stack
(``headrace up``)::

    python examples/compare_models/pipeline.py
"""

from __future__ import annotations

import csv
import random
import sys
import tempfile
from pathlib import Path

from headrace import (
    DataReference,
    Datastore,
    Environment,
    Experiment,
    Pipeline,
    PipelineData,
    PipelineParameter,
    PythonScriptStep,
    Workspace,
)
from headrace.core.conda_dependencies import CondaDependencies
from headrace.core.runconfig import RunConfiguration

SRC = Path(__file__).parent / "src"


def make_data(path: Path, rows: int = 400, seed: int = 7) -> None:
    """y = 3 x1 - 2 x2 + 1 + noise; a quarter of the rows held out for testing."""
    rng = random.Random(seed)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["x1", "x2", "y", "split"])
        for i in range(rows):
            x1, x2 = rng.uniform(-5, 5), rng.uniform(-5, 5)
            y = 3 * x1 - 2 * x2 + 1 + rng.gauss(0, 1.0)
            w.writerow([f"{x1:.4f}", f"{x2:.4f}", f"{y:.4f}", "test" if i % 4 == 0 else "train"])


def upload_data(store: Datastore) -> str:
    """Make the data set and upload it to ``store``; its path there."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "regression.csv"
        make_data(data)
        store.upload_files(
            [str(data)], target_path="compare_models", overwrite=True, show_progress=False
        )
    return "compare_models/regression.csv"


def sklearn_environment() -> Environment:
    """The training step's own environment: numpy and scikit-learn, built once."""
    env = Environment(name="compare-models-sklearn")
    env.python.conda_dependencies = CondaDependencies.create(
        pip_packages=["numpy==2.*", "scikit-learn==1.*"]
    )
    return env


def build(ws: Workspace) -> Pipeline:
    """The pipeline, written as in the seed (only the imports differ)."""
    def_blob_store = ws.get_default_datastore()
    upload_data(def_blob_store)

    blob_input_data = DataReference(
        datastore=def_blob_store,
        data_reference_name="test_data",
        path_on_datastore="compare_models/regression.csv",
    )
    models = PipelineData("models", datastore=def_blob_store)
    metrics = PipelineData("metrics", datastore=def_blob_store)
    report = PipelineData("report", datastore=def_blob_store)
    min_improvement = PipelineParameter(name="min_improvement", default_value=0.05)

    run_config = RunConfiguration()
    run_config.environment = sklearn_environment()

    train_step = PythonScriptStep(
        name="train",
        script_name="train.py",
        arguments=["--input", blob_input_data, "--output", models],
        inputs=[blob_input_data],
        outputs=[models],
        compute_target="local",
        runconfig=run_config,
        source_directory=str(SRC),
    )
    extract_step = PythonScriptStep(
        name="extract",
        script_name="extract.py",
        arguments=[
            "--data",
            blob_input_data.as_download(),
            "--models",
            models,
            "--output",
            metrics,
        ],
        inputs=[blob_input_data.as_download(), models],
        outputs=[metrics],
        compute_target="local",
        source_directory=str(SRC),
    )
    compare_step = PythonScriptStep(
        name="compare",
        script_name="compare.py",
        arguments=["--metrics", metrics, "--output", report, "--min_improvement", min_improvement],
        inputs=[metrics],
        outputs=[report],
        compute_target="local",
        source_directory=str(SRC),
    )
    compare_models = [train_step, extract_step, compare_step]
    return Pipeline(workspace=ws, steps=[compare_models])


def main() -> int:
    ws = Workspace.from_config()
    run = Experiment(ws, "Compare_Models_Exp").submit(build(ws))
    status = run.wait_for_completion(show_output=True)
    if status != "Completed":
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        run.find_step_run("compare")[0].get_output_data("report").download(tmp)
        print((Path(tmp) / "report.md").read_text())
    print("metrics:", run.find_step_run("compare")[0].get_metrics())
    return 0


if __name__ == "__main__":
    sys.exit(main())
