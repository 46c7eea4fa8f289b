-- SMS credit purchases (payments.md, "SMS credit"): each charge of the main card for credit,
-- bought by a member or by the auto top-up, is recorded BEFORE the gateway is asked, so that a
-- crash between the charge and its recording loses no money: the periodic work reads a pending
-- purchase back from the gateway by its merchant_uid and settles it.

CREATE TABLE sms_credit_purchases (
    merchant_uid text PRIMARY KEY,
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    amount bigint NOT NULL CHECK (amount >= 100),
    -- purchase | auto_topup (onboard_payments::sms_credit::CreditReason)
    reason text NOT NULL CONSTRAINT sms_credit_purchases_reason_check
        CHECK (reason IN ('purchase', 'auto_topup')),
    -- The main card charged (none when the group had no main card: failed at once).
    card_id uuid,
    customer_uid text,
    status text NOT NULL DEFAULT 'pending' CONSTRAINT sms_credit_purchases_status_check
        CHECK (status IN ('pending', 'paid', 'failed')),
    failure_reason text,
    created_at timestamptz NOT NULL
);

-- Purchases whose outcome is not recorded yet, oldest first (reconciliation).
CREATE INDEX sms_credit_purchases_pending_idx ON sms_credit_purchases (created_at)
    WHERE status = 'pending';
