-- Versioned pipeline endpoints: one stable URL in front of numbered versions ("0", "1", ...),
-- each a published pipeline; one version is the default that runs when none is named.
CREATE TABLE pipeline_endpoints (
    id              text PRIMARY KEY,
    name            text        NOT NULL UNIQUE,
    description     text        NOT NULL DEFAULT '',
    default_version text        NOT NULL,
    status          text        NOT NULL DEFAULT 'Active' CHECK (status IN ('Active', 'Disabled')),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE pipeline_endpoint_versions (
    endpoint_id text        NOT NULL REFERENCES pipeline_endpoints (id),
    version     text        NOT NULL,
    pipeline_id text        NOT NULL REFERENCES published_pipelines (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (endpoint_id, version)
);

-- API bearer tokens. Only a SHA-256 of the token is kept: the token itself is shown once.
CREATE TABLE api_tokens (
    id          text PRIMARY KEY,
    name        text        NOT NULL,
    token_hash  text        NOT NULL UNIQUE,
    scopes      text[]      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
