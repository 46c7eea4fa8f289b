-- Applies `p_delta` to the group's wallet and records it in the ledger, in the caller's
-- transaction. Answers the new balance, or NULL (nothing changed) when a debit would take the
-- balance below 0. A debit that crosses below the auto top-up threshold asks for a top-up.
-- It notifies nobody any more: the caller stores the low-credit event the payments domain
-- decides (`onboard_payments::events::low_credit_events`) in the same transaction, and the
-- notifications consumer tells the holders of `billing.manage`. `p_notification_ttl` is
-- unused, kept so the function keeps its signature.
CREATE OR REPLACE FUNCTION sms_credit_apply(
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
        IF v_below IS NOT NULL AND v_before >= v_below AND v_after < v_below THEN
            UPDATE sms_credit_wallets SET topup_requested_at = p_at
            WHERE group_id = p_group AND topup_requested_at IS NULL;
        END IF;
    END IF;
    RETURN v_after;
END
$$;
