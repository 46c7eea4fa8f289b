-- Invites to groups by phone and/or e-mail. The single-use codes live in the invite code store
-- (Redis or memory); this table is the record of truth for an invite's status.

CREATE TABLE invites (
    id uuid PRIMARY KEY,
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    -- The invited person's name, as the inviter wrote it.
    name text NOT NULL,
    -- E.164; when present, only the member with this phone may accept.
    phone text,
    -- Lower-cased by the kernel's Email.
    email text,
    -- The role granted on joining: a built-in role or one of the group's custom roles (a
    -- custom role deleted since grants `member`).
    role text NOT NULL,
    -- `expired` is stored only for a pending invite whose expiry had passed when a new invite
    -- named the same phone or e-mail (to free the unique indexes below); otherwise expiry is
    -- derived: `pending` and `expires_at` at or before now.
    status text NOT NULL CONSTRAINT invites_status_check
        CHECK (status IN ('pending', 'accepted', 'revoked', 'expired')),
    invited_by uuid NOT NULL REFERENCES members (id),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    accepted_by uuid REFERENCES members (id),
    accepted_at timestamptz,
    revoked_at timestamptz,
    CONSTRAINT invites_contact_check CHECK (phone IS NOT NULL OR email IS NOT NULL)
);

-- At most one pending invite per group and phone, and per group and e-mail: of two concurrent
-- creates naming one person, the second fails here.
CREATE UNIQUE INDEX invites_pending_phone_key ON invites (group_id, phone) WHERE status = 'pending';
CREATE UNIQUE INDEX invites_pending_email_key ON invites (group_id, email) WHERE status = 'pending';

-- A group's invites, newest first (the list and its keyset pages).
CREATE INDEX invites_group_idx ON invites (group_id, created_at DESC, id DESC);
