"""The compare-models pipeline with its data on S3 and its outputs on Azure Blob.

The data set goes to an S3 bucket and is registered as a tabular dataset; training reads it
through a ``DataReference`` (``--mode mount``: a read-only FUSE mount where the machine allows,
else a copy, as the step's mount log says; ``--mode download``: a copy cached on the node),
scoring reads the registered dataset through ``as_named_input``, and every intermediate
output lands in an Azure Blob container. Datastores are registered once, with credentials that
stay on the server::

    python examples/compare_models/remote_data.py --mode download \\
        --s3 ENDPOINT BUCKET ACCESS_KEY SECRET_KEY --azure ENDPOINT ACCOUNT KEY CONTAINER
"""

from __future__ import annotations

import argparse
import sys

from examples.compare_models.pipeline import SRC, sklearn_environment, upload_data
from headrace import (
    DataReference,
    Dataset,
    Datastore,
    Experiment,
    Pipeline,
    PipelineData,
    PipelineParameter,
    PythonScriptStep,
    Workspace,
)


def build(ws: Workspace, data_store: Datastore, output_store: Datastore, mode: str) -> Pipeline:
    path = upload_data(data_store)
    dataset = Dataset.Tabular.from_delimited_files(path=[(data_store, path)]).register(
        ws, "compare_models_regression", create_new_version=True
    )
    raw = DataReference(
        datastore=data_store, data_reference_name="raw_data", path_on_datastore=path, mode=mode
    )
    models = PipelineData("models", datastore=output_store)
    metrics = PipelineData("metrics", datastore=output_store)
    report = PipelineData("report", datastore=output_store)
    min_improvement = PipelineParameter(name="min_improvement", default_value=0.05)
    train = PythonScriptStep(
        name="train",
        script_name="train.py",
        arguments=["--input", raw, "--output", models],
        outputs=[models],
        environment=sklearn_environment(),
        source_directory=str(SRC),
    )
    extract = PythonScriptStep(
        name="extract",
        script_name="extract.py",
        arguments=["--models", models, "--output", metrics],
        inputs=[dataset.as_named_input("test_data"), models],
        outputs=[metrics],
        source_directory=str(SRC),
    )
    compare = PythonScriptStep(
        name="compare",
        script_name="compare.py",
        arguments=["--metrics", metrics, "--output", report, "--min_improvement", min_improvement],
        inputs=[metrics],
        outputs=[report],
        source_directory=str(SRC),
    )
    return Pipeline(workspace=ws, steps=[train, extract, compare])


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=["mount", "download"], default="download")
    p.add_argument("--s3", nargs=4, metavar=("ENDPOINT", "BUCKET", "ACCESS_KEY", "SECRET_KEY"))
    p.add_argument("--azure", nargs=4, metavar=("ENDPOINT", "ACCOUNT", "KEY", "CONTAINER"))
    args = p.parse_args(argv)
    ws = Workspace.from_config()
    if args.s3:
        endpoint, bucket, key_id, secret = args.s3
        Datastore.register_s3_bucket(
            ws,
            "example_s3",
            bucket,
            endpoint=endpoint,
            access_key_id=key_id,
            secret_access_key=secret,
            overwrite=True,
        )
    if args.azure:
        endpoint, account, key, container = args.azure
        Datastore.register_azure_blob_container(
            ws,
            "example_azure",
            container,
            account,
            account_key=key,
            endpoint=endpoint,
            overwrite=True,
        )
    pipeline = build(
        ws, Datastore.get(ws, "example_s3"), Datastore.get(ws, "example_azure"), args.mode
    )
    run = Experiment(ws, "Compare_Models_Remote").submit(pipeline)
    status = run.wait_for_completion(show_output=True)
    print("mount log of train:", run.find_step_run("train")[0].get_mount_log().strip() or "-")
    return 0 if status == "Completed" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
