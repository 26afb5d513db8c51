-- Published pipelines: an immutable pipeline (spec with its snapshots pinned) behind its own
-- REST endpoint; disabled ones refuse runs.

CREATE TABLE published_pipelines (
    id           text PRIMARY KEY,
    name         text        NOT NULL,
    description  text        NOT NULL DEFAULT '',
    version      text        NOT NULL DEFAULT '',
    spec         jsonb       NOT NULL,
    status       text        NOT NULL DEFAULT 'Active' CHECK (status IN ('Active', 'Disabled')),
    source_run   text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX published_pipelines_by_name ON published_pipelines (name, created_at DESC);
