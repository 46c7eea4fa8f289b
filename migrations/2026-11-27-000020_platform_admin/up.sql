-- Platform administration: admin flags, blocks, the audit trail, and the indexes of the admin
-- searches.

ALTER TABLE members
    -- Granted by `onboard admin grant` (ADMIN_PHONES needs no row change).
    ADD COLUMN is_admin boolean NOT NULL DEFAULT false,
    -- Set while the member is blocked: sign-in and refresh refuse them.
    ADD COLUMN blocked_at timestamptz,
    ADD COLUMN blocked_reason text;

-- Every admin action, written in the transaction of the change it records.
CREATE TABLE admin_audit (
    -- uuid v7: newest last; the keyset of the audit listing.
    id uuid PRIMARY KEY,
    -- 'member' (an admin through the API, actor_member_id set) or 'cli'.
    actor text NOT NULL CONSTRAINT admin_audit_actor_check CHECK (actor IN ('member', 'cli')),
    actor_member_id uuid REFERENCES members (id),
    action text NOT NULL
        CONSTRAINT admin_audit_action_check CHECK (action IN ('grant', 'revoke', 'block', 'unblock')),
    target_id uuid NOT NULL REFERENCES members (id),
    details text,
    created_at timestamptz NOT NULL
);

-- One member's audit history.
CREATE INDEX admin_audit_target_idx ON admin_audit (target_id, id DESC);

-- Admin member search, one index per kind of `q` (live members only), each serving a
-- left-anchored LIKE (`text_pattern_ops` compares bytes, so it works whatever the database
-- collation):
--   phone prefix (E.164 text),
CREATE INDEX members_phone_prefix_idx
    ON members (phone text_pattern_ops) WHERE deleted_at IS NULL;
--   e-mail prefix (stored lower-cased),
CREATE INDEX members_email_prefix_idx
    ON members (email text_pattern_ops) WHERE deleted_at IS NULL;
--   first- or last-name prefix, case-insensitive;
CREATE INDEX members_first_name_prefix_idx
    ON members (lower(first_name) text_pattern_ops) WHERE deleted_at IS NULL;
CREATE INDEX members_last_name_prefix_idx
    ON members (lower(last_name) text_pattern_ops) WHERE deleted_at IS NULL;
--   a referral code is an exact match on members_referral_code_key.

-- Admin group search: slug or name prefix, case-insensitive.
CREATE INDEX groups_slug_prefix_idx ON groups (slug text_pattern_ops);
CREATE INDEX groups_name_prefix_idx ON groups (lower(name) text_pattern_ops);

-- Stats: sign-ins (sessions opened) in the last 24 hours.
CREATE INDEX sessions_created_at_idx ON sessions (created_at);
