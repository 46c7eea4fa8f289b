-- Domain events: one generic outbox, written by every write port in the transaction of the
-- change the events report, and read by its consumers (notifications, webhooks), each at its
-- own position.

CREATE TABLE outbox (
    -- A UUID v7 made by the application: the event's id.
    id uuid PRIMARY KEY,
    -- The inserting transaction. The feed hands out only events of transactions older than
    -- every transaction still running, so a late commit never lands behind a consumer.
    txid bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    -- Order within a transaction.
    seq bigint GENERATED ALWAYS AS IDENTITY,
    -- The dotted type (`group.member_joined`).
    type text NOT NULL,
    aggregate_type text NOT NULL,
    aggregate_id uuid NOT NULL,
    -- The group the event belongs to, if any (kept as a bare id: events outlive groups).
    group_id uuid,
    payload jsonb NOT NULL,
    occurred_at timestamptz NOT NULL,
    version smallint NOT NULL
);

-- The feed: every consumer reads forward from its (txid, seq). The only index besides the
-- primary key, which also serves the retention purge (ids are UUID v7: ordered by time): each
-- index costs every write path that records events. (Migration 000150 adds one more, partial,
-- for the events API's pages of one group: outbox_group_feed_idx.)
CREATE INDEX outbox_feed_idx ON outbox (txid, seq);

-- Each consumer's position: every event up to (txid, seq) was handled. Moved only by a
-- conditional update in the transaction that records the consumer's effect.
CREATE TABLE outbox_consumers (
    name text PRIMARY KEY,
    txid bigint NOT NULL DEFAULT 0,
    seq bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Stores one event; for SQL that records events inside a statement of its own.
CREATE FUNCTION outbox_record(
    p_id uuid, p_type text, p_aggregate_type text, p_aggregate_id uuid, p_group uuid,
    p_payload jsonb, p_occurred_at timestamptz, p_version smallint
) RETURNS void
LANGUAGE sql VOLATILE AS $$
    INSERT INTO outbox (id, type, aggregate_type, aggregate_id, group_id, payload, occurred_at, version)
    VALUES (p_id, p_type, p_aggregate_type, p_aggregate_id, p_group, p_payload, p_occurred_at, p_version)
$$;
