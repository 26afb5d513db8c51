-- Custom environments. ``environments`` (keyed by a definition key, or 'default') now keeps the
-- definition, so runners find the variables and digest of what they materialise.
ALTER TABLE environments ADD COLUMN definition jsonb;

-- Every real build (a cache hit records none): what was built, where, how long, and why a
-- build failed. Builds of one definition are serialised by an advisory lock.
CREATE TABLE environment_builds (
    id          bigserial PRIMARY KEY,
    environment text             NOT NULL,
    digest      text,
    status      text             NOT NULL CHECK (status IN ('succeeded', 'failed')),
    instance    text             NOT NULL,
    seconds     double precision NOT NULL,
    log_key     text,
    reason      text,
    finished_at timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX environment_builds_by_env ON environment_builds (environment, finished_at DESC);

-- Environments registered by name and version (``env.register(ws)``); immutable.
CREATE TABLE registered_environments (
    name        text        NOT NULL,
    version     text        NOT NULL,
    definition  jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);
