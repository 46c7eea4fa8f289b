-- Members, their refresh sessions and the refresh tokens those sessions have used up.

CREATE TABLE members (
    id uuid PRIMARY KEY,
    -- E.164; NULL after deletion (the phone is free again) or for SSO-only members.
    -- A plain UNIQUE constraint already lets any number of rows hold NULL.
    phone text CONSTRAINT members_phone_key UNIQUE,
    first_name text,
    last_name text,
    -- Lower-cased by the kernel's Email; NULL after deletion.
    email text CONSTRAINT members_email_key UNIQUE,
    referral_code text NOT NULL CONSTRAINT members_referral_code_key UNIQUE,
    referred_by uuid REFERENCES members (id),
    referred_at timestamptz,
    -- The foreign key comes with the groups migration.
    current_group_id uuid,
    created_at timestamptz NOT NULL,
    deleted_at timestamptz
);

-- A member's invitees, newest first (profile, invitee pages, counts).
CREATE INDEX members_referred_by_idx ON members (referred_by, referred_at DESC, id DESC);

CREATE TABLE sessions (
    id uuid PRIMARY KEY,
    member_id uuid NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    -- SHA-256 of the session's live refresh token.
    refresh_hash bytea NOT NULL CONSTRAINT sessions_refresh_hash_key UNIQUE,
    user_agent text,
    created_at timestamptz NOT NULL,
    last_used_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);

CREATE INDEX sessions_member_idx ON sessions (member_id, created_at DESC);

-- Refresh tokens that a rotation used up, to tell a concurrent retry from a replay.
CREATE TABLE used_refresh_tokens (
    hash bytea PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    rotated_to bytea NOT NULL,
    used_at timestamptz NOT NULL
);
