-- The seed referral-api's users list pages the live members oldest first (offset
-- pages with a count). Exact filters use the unique indexes on phone, e-mail and referral
-- code, and members_referred_by_idx for the referrer's code.
CREATE INDEX members_directory_idx ON members (created_at, id) WHERE deleted_at IS NULL;
