-- The job queue (onboard_kernel::jobs::JobQueue): work that runs once across server
-- instances. A worker claims due rows with `FOR UPDATE SKIP LOCKED` and leases them; a lease
-- that runs out (a crashed instance) lets another worker take the job over.

CREATE TABLE jobs (
    id uuid PRIMARY KEY,
    -- What to run: the runner dispatches by name.
    name text NOT NULL,
    -- At most one job per key (periodic jobs are keyed by their name).
    key text CONSTRAINT jobs_key_key UNIQUE,
    payload jsonb NOT NULL DEFAULT 'null',
    -- Not claimed before this instant.
    run_at timestamptz NOT NULL,
    -- The current claim's token and how long it holds (NULL: not leased).
    lease uuid,
    locked_until timestamptz,
    -- Claims since it was enqueued or last rescheduled without error.
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    created_at timestamptz NOT NULL,
    CONSTRAINT jobs_lease_check CHECK ((lease IS NULL) = (locked_until IS NULL))
);

-- Due jobs, oldest first.
CREATE INDEX jobs_run_at_idx ON jobs (run_at);
