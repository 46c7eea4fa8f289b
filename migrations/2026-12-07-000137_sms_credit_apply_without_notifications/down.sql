-- The function as migration 000070 made it: a debit crossing below 1,000 KRW notifies.
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
