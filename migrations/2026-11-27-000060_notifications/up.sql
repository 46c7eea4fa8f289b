-- In-app notifications (notify area). Each row is also its own outbox entry: `published_at`
-- stays null until the outbox worker has published it for live delivery.

-- A UUID v7 (RFC 9562): 48 bits of Unix milliseconds, then random bits, so notification ids
-- made by the database sort by creation time like the ones the application makes.
CREATE FUNCTION notification_id_v7() RETURNS uuid
LANGUAGE sql VOLATILE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                placing substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;

CREATE TABLE notifications (
    id uuid PRIMARY KEY,
    member_id uuid NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    -- The dotted type name (`join_request.created`); checked by the domain.
    type text NOT NULL,
    title text NOT NULL,
    body text NOT NULL,
    -- The slug of the group it is about (kept as text: it outlives the group).
    group_slug text,
    link text,
    read boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    -- Hidden until then, and unread after.
    snoozed_until timestamptz,
    -- The outbox: null until published; a worker's claim holds a row until `claimed_until`.
    published_at timestamptz,
    claimed_until timestamptz
);

-- A member's notifications, newest first (pages, counts, replays).
CREATE INDEX notifications_member_idx ON notifications (member_id, id);
-- The outbox: the unpublished rows only.
CREATE INDEX notifications_unpublished_idx ON notifications (id) WHERE published_at IS NULL;
-- The expiry purge.
CREATE INDEX notifications_expires_idx ON notifications (expires_at);

-- Notifies, in the caller's transaction, every active member of group `p_group` whose role
-- holds `p_permission` (owner and admin hold every permission; a custom role the ones it
-- stores). Answers how many notifications were made. For producers in any domain:
-- `SELECT notify_group_permission($1, 'billing.manage', 'billing.payment_failed', ...)`.
CREATE FUNCTION notify_group_permission(
    p_group uuid, p_permission text, p_type text, p_title text, p_body text, p_link text,
    p_created_at timestamptz, p_expires_at timestamptz
) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    WITH made AS (
        INSERT INTO notifications (id, member_id, type, title, body, group_slug, link, created_at, expires_at)
        SELECT notification_id_v7(), gm.member_id, p_type, p_title, p_body, g.slug, p_link,
            p_created_at, p_expires_at
        FROM group_members gm
        JOIN groups g ON g.id = gm.group_id
        LEFT JOIN group_roles r ON r.group_id = gm.group_id AND r.name = gm.role
        WHERE gm.group_id = p_group AND gm.status = 'active'
            AND (gm.role IN ('owner', 'admin') OR p_permission = ANY (r.permissions))
        RETURNING 1
    )
    SELECT count(*) FROM made
$$;
