-- An idempotency key keeps its command's outcome (a domain value the payments domain
-- serialises, such as a plan change's account after or its refusal) instead of an HTTP status
-- and body. Answers kept before this migration cannot be read as outcomes: their keys stay
-- claimed without one, so a repeat is answered 409 `idempotency_key_in_use` until the key
-- expires (24 hours after its claim), and its command never runs a second time.
ALTER TABLE billing_idempotency_keys DROP CONSTRAINT billing_idempotency_keys_response_check;
ALTER TABLE billing_idempotency_keys DROP COLUMN response_status;
ALTER TABLE billing_idempotency_keys DROP COLUMN response_body;
-- The first command's outcome, once it is known (NULL while that command runs).
ALTER TABLE billing_idempotency_keys ADD COLUMN outcome jsonb;
