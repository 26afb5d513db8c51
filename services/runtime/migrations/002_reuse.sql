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
