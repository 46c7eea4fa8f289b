//! The statements of the webhooks store.

use super::{horizon_cte, record_events};

/// The columns of an endpoint row (`EndpointRow`), of table alias `$t`.
macro_rules! endpoint_columns {
    ($t:literal) => {
        concat!(
            $t,
            ".id, ",
            $t,
            ".group_id, ",
            $t,
            ".url, ",
            $t,
            ".description, ",
            $t,
            ".filters, ",
            $t,
            ".enabled, ",
            $t,
            ".secret, ",
            $t,
            ".previous_secret, ",
            $t,
            ".previous_expires_at, ",
            $t,
            ".failing_since, ",
            $t,
            ".created_at, ",
            $t,
            ".updated_at"
        )
    };
}

/// The columns of a delivery row (`DeliveryRow`).
macro_rules! delivery_columns {
    () => {
        "id, endpoint_id, event_id, event_type, status, attempts, next_attempt_at, \
         last_attempt_at, response_status, latency_ms, response, created_at"
    };
}

/// `$2` is the scope: a group, or NULL for the platform's endpoints.
macro_rules! in_scope {
    () => {
        "(group_id = $2 OR ($2::uuid IS NULL AND group_id IS NULL))"
    };
}

pub(super) const CREATE_ENDPOINT: &str = "
    INSERT INTO webhook_endpoints (id, group_id, url, description, filters, enabled, secret,
        previous_secret, previous_expires_at, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

pub(super) const GET_ENDPOINT: &str = concat!(
    "SELECT ",
    endpoint_columns!("e"),
    " FROM webhook_endpoints e WHERE e.id = $1 AND ",
    in_scope!()
);

pub(super) const LIST_ENDPOINTS: &str = concat!(
    "SELECT ",
    endpoint_columns!("e"),
    " FROM webhook_endpoints e WHERE (group_id = $1 OR ($1::uuid IS NULL AND group_id IS NULL))
    ORDER BY e.id"
);

/// What the owner changes; enabling a disabled endpoint clears its failing record.
pub(super) const UPDATE_ENDPOINT: &str = "
    UPDATE webhook_endpoints SET url = $2, description = $3, filters = $4,
        failing_since = CASE WHEN $5 AND NOT enabled THEN NULL ELSE failing_since END,
        enabled = $5, secret = $6, previous_secret = $7, previous_expires_at = $8,
        updated_at = $9
    WHERE id = $1";

pub(super) const DELETE_ENDPOINT: &str =
    concat!("DELETE FROM webhook_endpoints WHERE id = $1 AND ", in_scope!());

pub(super) const ENABLED_FOR: &str = concat!(
    "SELECT ",
    endpoint_columns!("e"),
    " FROM webhook_endpoints e WHERE e.enabled AND (e.group_id IS NULL OR e.group_id = ANY ($1))"
);

/// Whether any endpoint is enabled.
pub(super) const ANY_ENABLED: &str =
    "SELECT EXISTS (SELECT FROM webhook_endpoints WHERE enabled) AS any";

/// New deliveries from parallel arrays; one already made for its endpoint and event is skipped.
pub(super) const INSERT: &str = "
    INSERT INTO webhook_deliveries
        (id, endpoint_id, event_id, event_type, body, status, next_attempt_at, created_at)
    SELECT d.id, d.endpoint_id, d.event_id, d.event_type, d.body, 'pending', d.due_at, d.due_at
    FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::timestamptz[])
        AS d (id, endpoint_id, event_id, event_type, body, due_at)
    ON CONFLICT ON CONSTRAINT webhook_deliveries_event_key DO NOTHING";

/// Deliveries to store or put back to pending with a fresh schedule.
pub(super) const REQUEUE: &str = "
    INSERT INTO webhook_deliveries
        (id, endpoint_id, event_id, event_type, body, status, next_attempt_at, created_at)
    SELECT d.id, d.endpoint_id, d.event_id, d.event_type, d.body, 'pending', d.due_at, d.due_at
    FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::timestamptz[])
        AS d (id, endpoint_id, event_id, event_type, body, due_at)
    ON CONFLICT ON CONSTRAINT webhook_deliveries_event_key DO UPDATE
        SET status = 'pending', attempts = 0, next_attempt_at = EXCLUDED.next_attempt_at,
            lease = NULL";

pub(super) const LIST_DELIVERIES: &str = concat!(
    "SELECT ",
    delivery_columns!(),
    " FROM webhook_deliveries
    WHERE endpoint_id = $1 AND id < COALESCE($2, 'ffffffff-ffff-ffff-ffff-ffffffffffff')
    ORDER BY id DESC LIMIT $3"
);

/// One more attempt now; a claim in flight loses its lease.
pub(super) const RETRY: &str = concat!(
    "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $3, lease = NULL
    WHERE id = $1 AND endpoint_id = $2
    RETURNING ",
    delivery_columns!()
);

/// Claims up to `$3` pending deliveries due at `$1` of enabled endpoints, under a fresh lease
/// until `$2` (their due time moves to the lease's end). The subquery walks the due index.
pub(super) const CLAIM: &str = concat!(
    "WITH claimed AS (
        UPDATE webhook_deliveries d SET lease = gen_random_uuid(), next_attempt_at = $2
        WHERE d.id IN (
            SELECT d2.id FROM webhook_deliveries d2
            JOIN webhook_endpoints e2 ON e2.id = d2.endpoint_id AND e2.enabled
            WHERE d2.status = 'pending' AND d2.next_attempt_at <= $1
            ORDER BY d2.next_attempt_at LIMIT $3
            FOR UPDATE OF d2 SKIP LOCKED
        )
        RETURNING d.id, d.lease, d.event_id, d.body, d.attempts, d.endpoint_id
    )
    SELECT c.id AS delivery_id, c.lease, c.event_id, c.body, c.attempts, ",
    endpoint_columns!("e"),
    " FROM claimed c JOIN webhook_endpoints e ON e.id = c.endpoint_id"
);

/// Records an attempt on delivery `$1` claimed under `$2`, and its endpoint's health (`$10`:
/// healthy, failing or disable; `$11` failing since); the events `$12` only when this call
/// disabled the endpoint.
pub(super) const RECORD: &str = concat!(
    "WITH marked AS (
        UPDATE webhook_deliveries SET status = $3, attempts = $4, next_attempt_at = $5,
            lease = NULL, last_attempt_at = $6, response_status = $7, latency_ms = $8,
            response = $9
        WHERE id = $1 AND lease = $2
        RETURNING endpoint_id
    ), health AS (
        UPDATE webhook_endpoints SET failing_since = CASE WHEN $10 = 'healthy' THEN NULL
            ELSE coalesce(failing_since, $11) END
        WHERE id IN (SELECT endpoint_id FROM marked) AND $10 <> 'disable'
            AND (failing_since IS NOT NULL OR $10 <> 'healthy')
    ), disabled AS (
        UPDATE webhook_endpoints SET enabled = false, failing_since = coalesce(failing_since, $11)
        WHERE id IN (SELECT endpoint_id FROM marked) AND $10 = 'disable' AND enabled
        RETURNING id
    ), events AS (",
    record_events!("$12"),
    " WHERE EXISTS (SELECT FROM disabled)
    )
    SELECT count(*) AS count FROM marked"
);

pub(super) const OLDEST_DUE: &str = "
    SELECT min(next_attempt_at) AS oldest FROM webhook_deliveries
    WHERE status = 'pending' AND next_attempt_at <= $1";

pub(super) const PURGE: &str =
    "DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < $1";

/// The events API's filters: `$3` the scope, `$4` exact types and `$5` prefixes (both NULL:
/// every type), after (`$1`, `$2`), at most `$6`.
macro_rules! events_page {
    ($scope:literal) => {
        concat!(
            "WITH ",
            horizon_cte!(),
            "
            SELECT 0::bigint AS from_txid, 0::bigint AS from_seq, NULL::bigint AS last_txid,
                NULL::bigint AS last_seq, o.id, o.txid, o.seq,
                o.type AS event_type, o.aggregate_type, o.aggregate_id, o.group_id,
                o.payload::text AS payload, o.occurred_at, o.version
            FROM outbox o CROSS JOIN horizon
            WHERE (o.txid, o.seq) > ($1, $2) AND o.txid < horizon.txid AND ",
            $scope,
            " AND ($4::text[] IS NULL OR o.type = ANY ($4)
                OR EXISTS (SELECT FROM unnest($5::text[]) p WHERE starts_with(o.type, p)))
            ORDER BY o.txid, o.seq LIMIT $6"
        )
    };
}

/// A group's events, through `outbox_group_feed_idx`.
pub(super) const GROUP_EVENTS: &str = events_page!("o.group_id = $3");

/// Every event (`$3` is NULL and unused).
pub(super) const ALL_EVENTS: &str = events_page!("($3::uuid IS NULL OR true)");

/// The events of scope `$3` (NULL: every event) that occurred in [`$4`, `$5`), by id range
/// `$1`..`$2`, at most `$6`.
pub(super) const BETWEEN: &str = "
    SELECT 0::bigint AS from_txid, 0::bigint AS from_seq, NULL::bigint AS last_txid,
        NULL::bigint AS last_seq, o.id, o.txid, o.seq,
        o.type AS event_type, o.aggregate_type, o.aggregate_id, o.group_id,
        o.payload::text AS payload, o.occurred_at, o.version
    FROM outbox o
    WHERE o.id >= $1 AND o.id < $2 AND ($3::uuid IS NULL OR o.group_id = $3)
        AND o.occurred_at >= $4 AND o.occurred_at < $5
    ORDER BY o.id LIMIT $6";
