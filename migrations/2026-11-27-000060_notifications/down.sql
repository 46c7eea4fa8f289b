DROP FUNCTION notify_group_permission(uuid, text, text, text, text, text, timestamptz, timestamptz);
DROP TABLE notifications;
DROP FUNCTION notification_id_v7();
