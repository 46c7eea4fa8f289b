-- Outcomes are not HTTP answers: keys that have one stay claimed without an answer until they
-- expire (a repeat is answered 409 `idempotency_key_in_use`).
ALTER TABLE billing_idempotency_keys DROP COLUMN outcome;
ALTER TABLE billing_idempotency_keys ADD COLUMN response_status smallint;
ALTER TABLE billing_idempotency_keys ADD COLUMN response_body jsonb;
ALTER TABLE billing_idempotency_keys ADD CONSTRAINT billing_idempotency_keys_response_check
    CHECK ((response_status IS NULL) = (response_body IS NULL));
