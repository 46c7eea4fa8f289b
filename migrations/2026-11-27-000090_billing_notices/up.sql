-- Billing notifications (billnote): what was already notified, so that each notice is sent
-- once however many server instances run the work. The notifications themselves are rows of
-- `notifications` (migration 000060), made in the transaction of the change they report.

-- The trial-ending notices sent: one per (group, trial end, days before the end).
CREATE TABLE billing_trial_notices (
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    trial_ends_at timestamptz NOT NULL,
    days integer NOT NULL CONSTRAINT billing_trial_notices_days_check CHECK (days > 0),
    sent_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT billing_trial_notices_pkey PRIMARY KEY (group_id, trial_ends_at, days)
);

-- The usage thresholds notified: one per counter (group, metric, period) and percent. They go
-- with their counter.
CREATE TABLE billing_usage_notices (
    group_id uuid NOT NULL,
    metric text NOT NULL,
    period_start timestamptz NOT NULL,
    percent smallint NOT NULL CONSTRAINT billing_usage_notices_percent_check
        CHECK (percent BETWEEN 1 AND 100),
    sent_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT billing_usage_notices_pkey PRIMARY KEY (group_id, metric, period_start, percent),
    CONSTRAINT billing_usage_notices_counter_fkey FOREIGN KEY (group_id, metric, period_start)
        REFERENCES billing_usage (group_id, metric, period_start) ON DELETE CASCADE
);

-- The trial-ending job: trials by their end.
CREATE INDEX billing_accounts_trial_end_idx ON billing_accounts (trial_ends_at, group_id)
    WHERE status = 'trialing';
