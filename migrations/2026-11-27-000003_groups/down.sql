DROP INDEX members_current_group_idx;
ALTER TABLE members DROP CONSTRAINT members_current_group_id_fkey;
UPDATE members SET current_group_id = NULL WHERE current_group_id IS NOT NULL;
DROP TABLE group_members;
DROP TABLE group_roles;
DROP TABLE groups;
