-- headrace schema, version 1: delivery (outbox, inbox), workspace objects, runs and steps.

CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    topic       text        NOT NULL,
    key         bytea,
    value       bytea       NOT NULL,
    headers     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_created_at ON outbox (created_at);

CREATE TABLE inbox (
    consumer     text        NOT NULL,
    event_id     text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

CREATE TABLE datastores (
    name        text PRIMARY KEY,
    kind        text        NOT NULL,
    config      jsonb       NOT NULL,
    is_default  boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX datastores_one_default ON datastores (is_default) WHERE is_default;

CREATE TABLE compute_targets (
    name        text PRIMARY KEY,
    kind        text        NOT NULL,
    config      jsonb       NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE snapshots (
    digest      text PRIMARY KEY,
    status      text        NOT NULL CHECK (status IN ('ready', 'failed')),
    files       integer     NOT NULL DEFAULT 0,
    bytes       bigint      NOT NULL DEFAULT 0,
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE environments (
    name        text PRIMARY KEY,
    status      text        NOT NULL CHECK (status IN ('ready', 'failed')),
    digest      text,
    python      text,
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE runs (
    run_id              text PRIMARY KEY,
    experiment          text        NOT NULL,
    status              text        NOT NULL,
    spec                jsonb       NOT NULL,
    parameters          jsonb       NOT NULL DEFAULT '{}',
    regenerate_outputs  boolean     NOT NULL DEFAULT false,
    submitted_by        text,
    error               text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    finished_at         timestamptz,
    nudged_at           timestamptz  -- last time the watchdog re-sent its request
);
CREATE INDEX runs_experiment ON runs (experiment, created_at DESC);
CREATE INDEX runs_active ON runs (status) WHERE status IN ('Queued', 'Running');

CREATE TABLE steps (
    run_id            text        NOT NULL REFERENCES runs ON DELETE CASCADE,
    name              text        NOT NULL,
    status            text        NOT NULL DEFAULT 'NotStarted',
    phase             text        NOT NULL DEFAULT 'waiting',
    attempt           integer     NOT NULL DEFAULT 0,
    upstream          text[]      NOT NULL DEFAULT '{}',
    pending_upstream  integer     NOT NULL DEFAULT 0,
    snapshot          text        NOT NULL,
    environment       text        NOT NULL,
    compute_target    text        NOT NULL,
    snapshot_ready    boolean     NOT NULL DEFAULT false,
    environment_ready boolean     NOT NULL DEFAULT false,
    runner_id         text,
    failed_attempts   integer     NOT NULL DEFAULT 0,
    lost_attempts     integer     NOT NULL DEFAULT 0,
    exit_code         integer,
    error             text,
    queued_at         timestamptz,
    started_at        timestamptz,
    finished_at       timestamptz,
    nudged_at         timestamptz,
    PRIMARY KEY (run_id, name)
);
CREATE INDEX steps_waiting_snapshot ON steps (snapshot) WHERE NOT snapshot_ready;
CREATE INDEX steps_waiting_environment ON steps (environment) WHERE NOT environment_ready;

CREATE TABLE step_attempts (
    run_id      text        NOT NULL,
    step        text        NOT NULL,
    attempt     integer     NOT NULL,
    runner_id   text        NOT NULL,
    -- running: the runner holds the lease; finished: the script ended; fenced: the lease
    -- expired and the scheduler gave the step to a new attempt; canceled: the run was canceled;
    -- released: the runner shut down and handed the attempt back
    status      text        NOT NULL
                CHECK (status IN ('running', 'finished', 'fenced', 'canceled', 'released')),
    pid         integer,
    outcome     text,
    exit_code   integer,
    error       text,
    lease_until timestamptz NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    nudged_at   timestamptz,
    PRIMARY KEY (run_id, step, attempt)
);
CREATE INDEX step_attempts_leases ON step_attempts (lease_until) WHERE status = 'running';

CREATE TABLE step_outputs (
    run_id     text    NOT NULL,
    step       text    NOT NULL,
    name       text    NOT NULL,
    datastore  text    NOT NULL,
    path       text    NOT NULL,
    files      integer NOT NULL,
    bytes      bigint  NOT NULL,
    digest     text    NOT NULL,
    PRIMARY KEY (run_id, step, name)
);
CREATE UNIQUE INDEX step_outputs_by_name ON step_outputs (run_id, name);

CREATE TABLE step_logs (
    run_id     text    NOT NULL,
    step       text    NOT NULL,
    attempt    integer NOT NULL,
    stream     text    NOT NULL,
    datastore  text    NOT NULL,
    path       text    NOT NULL,
    bytes      bigint  NOT NULL,
    PRIMARY KEY (run_id, step, attempt, stream)
);

CREATE TABLE metrics (
    id         bigserial PRIMARY KEY,
    run_id     text        NOT NULL,
    step       text        NOT NULL,
    attempt    integer     NOT NULL,
    seq        integer     NOT NULL,
    name       text        NOT NULL,
    value      jsonb       NOT NULL,
    logged_at  timestamptz NOT NULL,
    UNIQUE (run_id, step, attempt, seq)
);
CREATE INDEX metrics_by_step ON metrics (run_id, step);
