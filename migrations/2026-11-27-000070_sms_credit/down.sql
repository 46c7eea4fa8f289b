DROP FUNCTION sms_credit_apply(uuid, bigint, text, text, timestamptz, interval);
DROP TABLE sms_credit_ledger;
DROP TABLE sms_credit_wallets;
