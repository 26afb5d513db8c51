-- Registered datasets: immutable, numbered versions (1, 2, ...) of a named definition.
-- A version records what it points at (definition: datastore paths and, for tabular data, the
-- delimited-file options) and what was there when it was registered (identity: datastore,
-- path, size and ETag of every object), so a later change to the data is visible as a
-- difference rather than silently read as the same version.
CREATE TABLE datasets (
    name        text        NOT NULL,
    version     integer     NOT NULL CHECK (version >= 1),
    id          uuid        NOT NULL UNIQUE,
    kind        text        NOT NULL CHECK (kind IN ('tabular', 'file')),
    description text        NOT NULL DEFAULT '',
    definition  jsonb       NOT NULL,
    identity    jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

-- Which run step consumed which dataset version under which input name. Written by the
-- pipeline code (later); read by GET /api/v1/datasets/{name}/lineage.
CREATE TABLE dataset_lineage (
    run_id          text        NOT NULL,
    step            text        NOT NULL,
    dataset_name    text        NOT NULL,
    dataset_version integer     NOT NULL,
    input_name      text        NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, step, input_name),
    FOREIGN KEY (dataset_name, dataset_version) REFERENCES datasets (name, version)
);
CREATE INDEX dataset_lineage_by_dataset ON dataset_lineage (dataset_name, dataset_version);
