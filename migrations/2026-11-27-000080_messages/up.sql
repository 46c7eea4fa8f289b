-- Messages a group sends (messaging.md, "Messages a group sends"). A message row is also its
-- own outbox entry: `due_at` is when its next step is due (the send while `queued`, the
-- delivery check of a `sent` alimtalk), NULL when it has none. A worker claims due rows with
-- `FOR UPDATE SKIP LOCKED` under a lease (`lease`, `claimed_until`) and records each step's
-- outcome only while its lease is the row's; a lease that runs out (a crashed worker) lets
-- another worker claim the row again.

CREATE TABLE messages (
    id uuid PRIMARY KEY,
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    to_phone text NOT NULL,
    channel text NOT NULL CONSTRAINT messages_channel_check
        CHECK (channel IN ('sms', 'lms', 'alimtalk')),
    text text NOT NULL,
    template_code text,
    failover boolean NOT NULL DEFAULT false,
    -- KRW debited from the group's SMS credit (refunded when it failed or failed over).
    price bigint NOT NULL CHECK (price >= 0),
    status text NOT NULL CONSTRAINT messages_status_check
        CHECK (status IN ('queued', 'sent', 'delivered', 'failed', 'failed_over')),
    -- The provider's result code (a refusal, or the alimtalk delivery check's).
    result_code text,
    provider_message_id text,
    -- The alimtalk a failover resend resends, and the resend of a failed-over alimtalk.
    failover_of uuid REFERENCES messages (id) ON DELETE SET NULL,
    failover_id uuid,
    -- The outbox.
    due_at timestamptz,
    lease uuid,
    claimed_until timestamptz,
    -- Delivery checks made (alimtalk).
    checks integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT messages_lease_check CHECK ((lease IS NULL) = (claimed_until IS NULL))
);

-- The claim: due rows, earliest first.
CREATE INDEX messages_due_idx ON messages (due_at) WHERE due_at IS NOT NULL;

-- A group's messages by id (GET one, and the list newest first).
CREATE INDEX messages_group_idx ON messages (group_id, id DESC);
