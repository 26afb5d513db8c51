-- The model registry (v1's Model.register): numbered versions of a named set of files. The
-- files are blobs of the default datastore, named by a manifest like a snapshot's, so a
-- version is immutable and identical files are stored once.
CREATE TABLE models (
    name text NOT NULL,
    version integer NOT NULL CHECK (version > 0),
    manifest text NOT NULL,
    -- the base name of what was registered (a file or a directory), which download recreates
    path text NOT NULL,
    description text NOT NULL DEFAULT '',
    tags jsonb NOT NULL DEFAULT '{}',
    properties jsonb NOT NULL DEFAULT '{}',
    -- the datasets it names (lineage): [{"name": ..., "version": ...}]
    datasets jsonb NOT NULL DEFAULT '[]',
    model_framework text,
    model_framework_version text,
    -- the run and step that registered it, when a run did
    run_id text,
    step text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);
CREATE INDEX models_by_tags ON models USING gin (tags);
CREATE INDEX models_by_run ON models (run_id) WHERE run_id IS NOT NULL;

-- The last version number given to each name: a deleted version's number is never given again,
-- so "model:3" always meant the same files.
CREATE TABLE model_names (
    name text PRIMARY KEY,
    last_version integer NOT NULL
);
