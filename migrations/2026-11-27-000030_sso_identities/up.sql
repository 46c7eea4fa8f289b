-- Single sign-on: the provider identities linked to members.

CREATE TABLE sso_identities (
    -- The provider's configured name (`sparcs`, `google`).
    provider text NOT NULL,
    -- The provider's `sub`: stable per person and provider.
    subject text NOT NULL,
    member_id uuid NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    last_login_at timestamptz NOT NULL,
    CONSTRAINT sso_identities_provider_subject_key PRIMARY KEY (provider, subject)
);

-- A member's identities (and the foreign key's checks when a member row goes).
CREATE INDEX sso_identities_member_idx ON sso_identities (member_id);
