-- Pipeline drafts (v1's PipelineDraft): a mutable pipeline kept server-side, with its
-- snapshots pinned like a published pipeline's, that is edited, run and finally published.
CREATE TABLE pipeline_drafts (
    id text PRIMARY KEY,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    experiment text NOT NULL,
    spec jsonb NOT NULL,
    parameters jsonb NOT NULL DEFAULT '{}',
    continue_on_step_failure boolean,
    tags jsonb NOT NULL DEFAULT '{}',
    properties jsonb NOT NULL DEFAULT '{}',
    last_submitted_run_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pipeline_drafts_by_tags ON pipeline_drafts USING gin (tags);
