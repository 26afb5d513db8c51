-- Step reuse: each step's fingerprint (and what went into it), and the index of reusable
-- results by fingerprint.

ALTER TABLE steps ADD COLUMN fingerprint text;
ALTER TABLE steps ADD COLUMN fingerprint_doc jsonb;
ALTER TABLE steps ADD COLUMN reused_from_run text;
ALTER TABLE steps ADD COLUMN reused_from_step text;

CREATE TABLE reuse_index (
    fingerprint  text        NOT NULL,
    run_id       text        NOT NULL,
    step         text        NOT NULL,
    outputs      jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (fingerprint, run_id, step)
);
CREATE INDEX reuse_index_latest ON reuse_index (fingerprint, created_at DESC);
CREATE INDEX steps_by_fingerprint ON steps (fingerprint) WHERE fingerprint IS NOT NULL;
CREATE INDEX steps_waiting_reuse ON steps (fingerprint) WHERE phase = 'waiting_reuse';

-- What the submitter knew about the run: git commit, branch, dirty flag, remote.
ALTER TABLE runs ADD COLUMN properties jsonb NOT NULL DEFAULT '{}';
