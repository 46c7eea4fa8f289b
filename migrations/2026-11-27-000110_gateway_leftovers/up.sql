-- What a deleted group leaves at the payment gateway: its billing keys (every customer_uid
-- issued to it) and its scheduled charges. Deleting the group cascades its billing rows away,
-- so a trigger records these first, in the same transaction; the periodic payments work
-- cancels the schedules and deletes the keys, and forgets each row once the gateway agrees.
-- A deleted workspace is never charged again.

CREATE TABLE billing_gateway_leftovers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_uid text NOT NULL,
    -- NULL: delete the billing key; else cancel this scheduled charge on it.
    merchant_uid text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION billing_record_gateway_leftovers() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO billing_gateway_leftovers (customer_uid, merchant_uid)
    SELECT customer_uid, merchant_uid FROM billing_charges
    WHERE group_id = OLD.id AND status = 'scheduled';
    INSERT INTO billing_gateway_leftovers (customer_uid, merchant_uid)
    SELECT customer_uid, NULL FROM billing_customer_uids WHERE group_id = OLD.id;
    RETURN OLD;
END
$$;

CREATE TRIGGER groups_record_gateway_leftovers
    BEFORE DELETE ON groups
    FOR EACH ROW EXECUTE FUNCTION billing_record_gateway_leftovers();
