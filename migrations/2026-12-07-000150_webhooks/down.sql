DROP INDEX outbox_group_feed_idx;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
