-- Schedules (v1's Schedule): a published pipeline or endpoint run on a recurrence, or when
-- objects under a datastore path are added or changed. The schedule firer claims a due
-- schedule by locking its row and moving next_due in the transaction that records the firing
-- and stages the run request, so a due time fires once however many firers run.
CREATE TABLE schedules (
    id text PRIMARY KEY,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    pipeline_id text REFERENCES published_pipelines (id),
    pipeline_endpoint_id text REFERENCES pipeline_endpoints (id),
    experiment text NOT NULL,
    parameters jsonb NOT NULL DEFAULT '{}',
    continue_on_step_failure boolean,
    status text NOT NULL DEFAULT 'Active' CHECK (status IN ('Active', 'Disabled')),
    recurrence jsonb,
    datastore text,
    path_on_datastore text,
    polling_interval_minutes integer,
    data_path_parameter_name text,
    -- the next instant the firer acts on it (a recurrence's due time, a datastore's next poll)
    next_due timestamptz,
    -- when a datastore-triggered schedule last listed its path (NULL: never; the first listing
    -- is the baseline and starts nothing)
    polled_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((pipeline_id IS NULL) <> (pipeline_endpoint_id IS NULL)),
    CHECK ((recurrence IS NULL) <> (datastore IS NULL))
);
CREATE INDEX schedules_due ON schedules (next_due) WHERE status = 'Active';

-- One row per occurrence acted on: a run started (run_id) or skipped (reason), never two.
-- occurrence is the due instant of a recurrence, or "path@content digest" of a datastore change.
CREATE TABLE schedule_firings (
    schedule_id text NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    occurrence text NOT NULL,
    due_at timestamptz NOT NULL,
    fired_at timestamptz NOT NULL DEFAULT now(),
    run_id text,
    skipped_reason text,
    PRIMARY KEY (schedule_id, occurrence),
    CHECK ((run_id IS NULL) <> (skipped_reason IS NULL))
);
CREATE INDEX schedule_firings_by_time ON schedule_firings (schedule_id, fired_at);

-- What a datastore-triggered schedule last saw under its path: the ETag tells cheaply that an
-- object may have changed, the content digest whether it did (a rewrite of the same bytes
-- changes a local file's ETag, not its content, and starts nothing).
CREATE TABLE schedule_objects (
    schedule_id text NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    path text NOT NULL,
    etag text NOT NULL,
    digest text NOT NULL,
    PRIMARY KEY (schedule_id, path)
);
