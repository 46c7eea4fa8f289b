-- Prepaid SMS credit per group (payments.md, "SMS credit"): a wallet in KRW that never goes
-- below 0, and a ledger of every change to it.

CREATE TABLE sms_credit_wallets (
    group_id uuid PRIMARY KEY REFERENCES groups (id) ON DELETE CASCADE,
    balance bigint NOT NULL DEFAULT 0 CONSTRAINT sms_credit_wallets_balance_check CHECK (balance >= 0),
    -- Auto top-up: when a debit takes the balance from at or above `auto_topup_below` to below
    -- it, `topup_requested_at` is set (once per crossing) and the periodic top-up job charges
    -- the main card `auto_topup_amount` and clears it.
    auto_topup_below bigint CHECK (auto_topup_below >= 0),
    auto_topup_amount bigint CHECK (auto_topup_amount >= 100),
    topup_requested_at timestamptz,
    updated_at timestamptz NOT NULL,
    CONSTRAINT sms_credit_wallets_auto_topup_check
        CHECK ((auto_topup_below IS NULL) = (auto_topup_amount IS NULL))
);

-- Wallets waiting for their auto top-up.
CREATE INDEX sms_credit_wallets_topup_idx ON sms_credit_wallets (topup_requested_at)
    WHERE topup_requested_at IS NOT NULL;

CREATE TABLE sms_credit_ledger (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    delta bigint NOT NULL CHECK (delta <> 0),
    -- The balance after this change.
    balance bigint NOT NULL CHECK (balance >= 0),
    -- purchase | auto_topup | message | refund | invite_sms (onboard_payments::sms_credit::CreditReason)
    reason text NOT NULL,
    -- What it is for: a message id, a receipt's merchant_uid, an invite id.
    reference text,
    at timestamptz NOT NULL
);

-- A group's ledger, newest first (keyset by id).
CREATE INDEX sms_credit_ledger_group_idx ON sms_credit_ledger (group_id, id DESC);

-- Applies `p_delta` to the group's wallet and records it in the ledger, in the caller's
-- transaction. Answers the new balance, or NULL (nothing changed) when a debit would take the
-- balance below 0. A debit that crosses below 1,000 KRW notifies the holders of
-- `billing.manage` (`sms_credit.low`); one that crosses below the auto top-up threshold asks
-- for a top-up.
CREATE FUNCTION sms_credit_apply(
    p_group uuid, p_delta bigint, p_reason text, p_reference text, p_at timestamptz,
    p_notification_ttl interval
) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_after bigint;
    v_before bigint;
    v_below bigint;
BEGIN
    IF p_delta = 0 THEN
        RAISE EXCEPTION 'sms_credit_apply: a zero delta';
    ELSIF p_delta > 0 THEN
        INSERT INTO sms_credit_wallets AS w (group_id, balance, updated_at)
        VALUES (p_group, p_delta, p_at)
        ON CONFLICT (group_id) DO UPDATE SET balance = w.balance + EXCLUDED.balance, updated_at = p_at
        RETURNING w.balance INTO v_after;
    ELSE
        UPDATE sms_credit_wallets
        SET balance = balance + p_delta, updated_at = p_at
        WHERE group_id = p_group AND balance >= -p_delta
        RETURNING balance, auto_topup_below INTO v_after, v_below;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
    END IF;
    v_before := v_after - p_delta;
    INSERT INTO sms_credit_ledger (group_id, delta, balance, reason, reference, at)
    VALUES (p_group, p_delta, v_after, p_reason, p_reference, p_at);
    IF p_delta < 0 THEN
        IF v_before >= 1000 AND v_after < 1000 THEN
            PERFORM notify_group_permission(p_group, 'billing.manage', 'sms_credit.low',
                'SMS credit is running low',
                format('%s KRW of SMS credit is left.', v_after),
                NULL, p_at, p_at + p_notification_ttl);
        END IF;
        IF v_below IS NOT NULL AND v_before >= v_below AND v_after < v_below THEN
            UPDATE sms_credit_wallets SET topup_requested_at = p_at
            WHERE group_id = p_group AND topup_requested_at IS NULL;
        END IF;
    END IF;
    RETURN v_after;
END
$$;
