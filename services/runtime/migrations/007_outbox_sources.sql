-- Each service relays only the outbox rows it staged (``source`` is the service's CloudEvents
-- source, e.g. '/scheduler'), so eight services no longer contend for one table; rows written
-- before this migration have source '' and are relayed by whichever service gets them first.
ALTER TABLE outbox ADD COLUMN source text NOT NULL DEFAULT '';
CREATE INDEX outbox_source_created_at ON outbox (source, created_at);

-- Rows the broker can never accept (larger than its limit, an invalid topic) are moved here
-- with the reason, instead of being retried forever; the run they belong to is failed.
CREATE TABLE outbox_rejected (
    id          bigint      PRIMARY KEY,
    source      text        NOT NULL,
    topic       text        NOT NULL,
    key         bytea,
    event_type  text,
    size        integer     NOT NULL,
    reason      text        NOT NULL,
    created_at  timestamptz NOT NULL,
    rejected_at timestamptz NOT NULL DEFAULT now()
);
