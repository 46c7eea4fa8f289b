DROP FUNCTION outbox_record;
DROP TABLE outbox_consumers;
DROP TABLE outbox;
