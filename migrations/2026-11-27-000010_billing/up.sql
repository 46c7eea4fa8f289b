-- Workspace billing (payments.md): the plan catalogue (seeded below), billing accounts, cards
-- held as gateway billing keys, the charges Onboard schedules, receipts, usage counters,
-- idempotency keys of plan changes and the main-card change journal.
--
-- No card number, CVC, expiry or birth date is ever stored: only what the gateway reports
-- back (its masked number and card name) and the customer_uid Onboard issued.

-- The catalogue. Prices are KRW per month, VAT excluded (`yearly_price` is per month when
-- billed yearly, ×12).
CREATE TABLE billing_plans (
    code text PRIMARY KEY,
    name text NOT NULL,
    monthly_price bigint NOT NULL CONSTRAINT billing_plans_monthly_price_check CHECK (monthly_price >= 0),
    yearly_price bigint NOT NULL CONSTRAINT billing_plans_yearly_price_check CHECK (yearly_price >= 0)
);

-- Per plan and metric, the most one billing period may count (NULL: unlimited).
CREATE TABLE billing_plan_limits (
    plan_code text NOT NULL REFERENCES billing_plans (code) ON DELETE CASCADE,
    metric text NOT NULL,
    max_used bigint CONSTRAINT billing_plan_limits_max_used_check CHECK (max_used >= 0),
    CONSTRAINT billing_plan_limits_pkey PRIMARY KEY (plan_code, metric)
);

-- The add-ons a plan offers, with their prices on that plan; `position` keeps display order.
CREATE TABLE billing_plan_addons (
    plan_code text NOT NULL REFERENCES billing_plans (code) ON DELETE CASCADE,
    addon_code text NOT NULL,
    position smallint NOT NULL,
    monthly_price bigint NOT NULL CONSTRAINT billing_plan_addons_monthly_price_check CHECK (monthly_price >= 0),
    yearly_price bigint NOT NULL CONSTRAINT billing_plan_addons_yearly_price_check CHECK (yearly_price >= 0),
    CONSTRAINT billing_plan_addons_pkey PRIMARY KEY (plan_code, addon_code)
);

-- The customer_uids Onboard issued, each to one group: only these can become cards.
CREATE TABLE billing_customer_uids (
    customer_uid text PRIMARY KEY,
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL
);
CREATE INDEX billing_customer_uids_group_idx ON billing_customer_uids (group_id);

-- Cards (billing keys at the gateway).
CREATE TABLE billing_cards (
    id uuid PRIMARY KEY,
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    customer_uid text NOT NULL CONSTRAINT billing_cards_customer_uid_key UNIQUE,
    card_name text NOT NULL,
    -- As the gateway masks it ("424242******4242").
    number_masked text NOT NULL,
    main boolean NOT NULL,
    created_at timestamptz NOT NULL
);
-- At most one main card per group: of two racing adds or main-card changes, one wins here.
CREATE UNIQUE INDEX billing_cards_one_main_key ON billing_cards (group_id) WHERE main;
-- A group's cards, oldest first.
CREATE INDEX billing_cards_group_idx ON billing_cards (group_id, created_at, id);

-- The charges Onboard asked the gateway for (scheduled or immediate): what a webhook must
-- match. Only `status` ever changes.
CREATE TABLE billing_charges (
    -- Onboard's payment id at the gateway, unique across groups and instances.
    merchant_uid text PRIMARY KEY,
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    -- No foreign key: a card may be deleted once nothing is scheduled on it, its past charges
    -- stay.
    card_id uuid NOT NULL,
    customer_uid text NOT NULL,
    -- KRW, VAT included (what the gateway must report), and the VAT part of it.
    amount bigint NOT NULL CONSTRAINT billing_charges_amount_check CHECK (amount >= 0),
    vat bigint NOT NULL CONSTRAINT billing_charges_vat_check CHECK (vat >= 0),
    -- When the gateway runs it.
    at timestamptz NOT NULL,
    plan_code text NOT NULL REFERENCES billing_plans (code),
    interval text NOT NULL CONSTRAINT billing_charges_interval_check CHECK (interval IN ('month', 'year')),
    addons text[] NOT NULL DEFAULT '{}',
    period_start timestamptz NOT NULL,
    kind text NOT NULL CONSTRAINT billing_charges_kind_check
        CHECK (kind IN ('trial_end', 'renewal', 'retry', 'immediate')),
    attempt integer NOT NULL CONSTRAINT billing_charges_attempt_check CHECK (attempt BETWEEN 0 AND 3),
    status text NOT NULL CONSTRAINT billing_charges_status_check
        CHECK (status IN ('scheduled', 'paid', 'failed', 'cancelled')),
    created_at timestamptz NOT NULL
);
CREATE INDEX billing_charges_group_idx ON billing_charges (group_id);
-- Reconciliation: scheduled charges by time.
CREATE INDEX billing_charges_scheduled_at_idx ON billing_charges (at) WHERE status = 'scheduled';
-- A card's deletion checks that nothing is scheduled on it.
CREATE INDEX billing_charges_scheduled_card_idx ON billing_charges (card_id) WHERE status = 'scheduled';

-- One billing account per group (a group without one is on Free).
CREATE TABLE billing_accounts (
    group_id uuid PRIMARY KEY REFERENCES groups (id) ON DELETE CASCADE,
    plan_code text NOT NULL REFERENCES billing_plans (code),
    interval text CONSTRAINT billing_accounts_interval_check CHECK (interval IN ('month', 'year')),
    addons text[] NOT NULL DEFAULT '{}',
    status text NOT NULL CONSTRAINT billing_accounts_status_check
        CHECK (status IN ('free', 'trialing', 'active', 'past_due', 'canceling')),
    trial_ends_at timestamptz,
    current_period_start timestamptz,
    current_period_end timestamptz,
    cancel_at_period_end boolean NOT NULL,
    trial_used boolean NOT NULL,
    -- The hour (0-23, in BILLING_TZ) at which this group's charges run.
    pay_hour smallint NOT NULL CONSTRAINT billing_accounts_pay_hour_check CHECK (pay_hour BETWEEN 0 AND 23),
    -- The pending charge Onboard scheduled (at most one per group).
    next_charge text REFERENCES billing_charges (merchant_uid) ON DELETE SET NULL,
    -- Optimistic concurrency: every write is `... WHERE version = <the version read>`.
    version bigint NOT NULL
);
-- Period ends: the accounts that may fall back to Free.
CREATE INDEX billing_accounts_period_end_idx ON billing_accounts (current_period_end)
    WHERE status <> 'free';

-- Receipts: one per gateway payment. The unique imp_uid is what makes webhooks idempotent
-- (a payment already recorded is never applied again).
CREATE TABLE billing_receipts (
    id uuid PRIMARY KEY,
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    kind text NOT NULL CONSTRAINT billing_receipts_kind_check CHECK (kind IN ('subscription', 'sms_credit')),
    amount bigint NOT NULL,
    vat bigint NOT NULL,
    status text NOT NULL CONSTRAINT billing_receipts_status_check
        CHECK (status IN ('paid', 'failed', 'cancelled')),
    imp_uid text NOT NULL CONSTRAINT billing_receipts_imp_uid_key UNIQUE,
    merchant_uid text NOT NULL,
    card_id uuid,
    paid_at timestamptz,
    failure_reason text,
    created_at timestamptz NOT NULL
);
-- A group's receipts, newest first (the list and its keyset pages).
CREATE INDEX billing_receipts_group_idx ON billing_receipts (group_id, created_at DESC, id DESC);

-- Usage counters per group, metric and billing period. Increments are one conditional upsert
-- (`... SET used = used + d WHERE used + d <= limit`), so they never pass the limit.
CREATE TABLE billing_usage (
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    metric text NOT NULL,
    period_start timestamptz NOT NULL,
    used bigint NOT NULL CONSTRAINT billing_usage_used_check CHECK (used >= 0),
    CONSTRAINT billing_usage_pkey PRIMARY KEY (group_id, metric, period_start)
);

-- Idempotency keys of plan changes, per group, live 24 hours (an older row is replaced by
-- the next claim of its key).
CREATE TABLE billing_idempotency_keys (
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    key text NOT NULL,
    request_hash text NOT NULL,
    claimed_at timestamptz NOT NULL,
    -- The first answer, once it is known (NULL while the first request runs).
    response_status smallint,
    response_body jsonb,
    CONSTRAINT billing_idempotency_keys_pkey PRIMARY KEY (group_id, key),
    CONSTRAINT billing_idempotency_keys_response_check
        CHECK ((response_status IS NULL) = (response_body IS NULL))
);
-- For purging expired keys.
CREATE INDEX billing_idempotency_keys_claimed_idx ON billing_idempotency_keys (claimed_at);

-- The main-card change saga's journal: one row per change, with the furthest step reached.
CREATE TABLE billing_card_changes (
    id uuid PRIMARY KEY,
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    -- No foreign keys to cards: the journal outlives them.
    old_card uuid,
    new_card uuid NOT NULL,
    -- The charge that was pending (scheduled) on the old card when the change began.
    old_merchant_uid text REFERENCES billing_charges (merchant_uid) ON DELETE CASCADE,
    new_merchant_uid text NOT NULL,
    step text NOT NULL CONSTRAINT billing_card_changes_step_check
        CHECK (step IN ('marked', 'unscheduled', 'scheduled', 'done', 'rolled_back')),
    created_at timestamptz NOT NULL
);
-- At most one unfinished main-card change per group.
CREATE UNIQUE INDEX billing_card_changes_unfinished_key ON billing_card_changes (group_id)
    WHERE step IN ('marked', 'unscheduled', 'scheduled');
-- Start-up recovery: the unfinished rows, oldest first.
CREATE INDEX billing_card_changes_unfinished_idx ON billing_card_changes (created_at, id)
    WHERE step IN ('marked', 'unscheduled', 'scheduled');

-- The catalogue: payments.md's prices and limits; add-on prices of the billing service Onboard
-- replaces (an add-on it priced at 0 on a plan is not offered there). The same values as
-- `onboard_payments::Catalogue::seed` (a test compares them).
INSERT INTO billing_plans (code, name, monthly_price, yearly_price) VALUES
    ('free', 'Free', 0, 0),
    ('starter', 'Starter', 43000, 38000),
    ('pro', 'Pro', 75800, 68000),
    ('team', 'Team', 125300, 112000),
    ('company', 'Company', 227200, 204000);

INSERT INTO billing_plan_limits (plan_code, metric, max_used) VALUES
    ('free', 'consultations', 3), ('free', 'customers', 10), ('free', 'forms', 1),
    ('free', 'storage_gib', 0),
    ('starter', 'consultations', 40), ('starter', 'customers', 45), ('starter', 'forms', NULL),
    ('starter', 'storage_gib', 500),
    ('pro', 'consultations', 100), ('pro', 'customers', 113), ('pro', 'forms', NULL),
    ('pro', 'storage_gib', 1024),
    ('team', 'consultations', 205), ('team', 'customers', 225), ('team', 'forms', NULL),
    ('team', 'storage_gib', 1536),
    ('company', 'consultations', 410), ('company', 'customers', 450), ('company', 'forms', NULL),
    ('company', 'storage_gib', 2048);

INSERT INTO billing_plan_addons (plan_code, addon_code, position, monthly_price, yearly_price) VALUES
    ('starter', 'analytics', 1, 21500, 19000),
    ('starter', 'chat', 2, 21500, 19000),
    ('pro', 'analytics', 1, 60700, 54000),
    ('pro', 'chat', 2, 60700, 54000),
    ('team', 'white_label', 1, 150400, 135000),
    ('team', 'analytics', 2, 150400, 135000),
    ('team', 'chat', 3, 150400, 135000),
    ('company', 'white_label', 1, 454300, 408000),
    ('company', 'analytics', 2, 340700, 306000),
    ('company', 'chat', 3, 340700, 306000);
