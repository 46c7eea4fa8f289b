DROP TRIGGER members_join_referrers_set ON members;
DROP FUNCTION members_join_referrers_set();
ALTER TABLE members DROP COLUMN ref_rank, DROP COLUMN ref_parent;
