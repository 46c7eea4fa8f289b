-- Outgoing webhooks (Standard Webhooks) and the events API: the outbox's second consumer.

-- A group's endpoint (`group_id`) or the platform's (NULL: it hears every event).
CREATE TABLE webhook_endpoints (
    id uuid PRIMARY KEY,
    group_id uuid REFERENCES groups (id) ON DELETE CASCADE,
    url text NOT NULL,
    description text NOT NULL DEFAULT '',
    -- Exact types, `prefix.*`, or `*`; empty: every event of the scope.
    filters text[] NOT NULL DEFAULT '{}',
    enabled boolean NOT NULL,
    -- `whsec_...`; HMAC needs the key itself, so it is kept as is and never shown again.
    secret text NOT NULL,
    -- A rotation's old secret, still signing until `previous_expires_at`.
    previous_secret text,
    previous_expires_at timestamptz,
    -- Since when every attempt has failed; NULL after a success.
    failing_since timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT webhook_endpoints_previous_check
        CHECK ((previous_secret IS NULL) = (previous_expires_at IS NULL))
);

CREATE INDEX webhook_endpoints_group_idx ON webhook_endpoints (group_id, id);

-- One row per endpoint and event: its own outbox entry. A pending row is due at
-- `next_attempt_at`; a claim sets `lease` and moves `next_attempt_at` to the lease's end, so a
-- worker that dies mid-delivery leaves the row due again then.
CREATE TABLE webhook_deliveries (
    id uuid PRIMARY KEY,
    endpoint_id uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- The outbox event (or a test event): `webhook-id` is `msg_` and this id, on every attempt.
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    body text NOT NULL,
    status text NOT NULL CONSTRAINT webhook_deliveries_status_check
        CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    lease uuid,
    -- The last attempt.
    last_attempt_at timestamptz,
    response_status integer,
    latency_ms integer,
    response text,
    created_at timestamptz NOT NULL,
    CONSTRAINT webhook_deliveries_event_key UNIQUE (endpoint_id, event_id),
    CONSTRAINT webhook_deliveries_due_check
        CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);

-- The claim: pending rows by due time, an index scan.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';

-- An endpoint's deliveries, newest first.
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id DESC);

-- The events API of one group, in feed order. Partial: events without a group cost no entry.
CREATE INDEX outbox_group_feed_idx ON outbox (group_id, txid, seq) WHERE group_id IS NOT NULL;
