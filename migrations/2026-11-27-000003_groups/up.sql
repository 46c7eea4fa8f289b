-- Groups (workspaces, companies), their custom roles and memberships; members' current group.

CREATE TABLE groups (
    id uuid PRIMARY KEY,
    -- [a-z0-9-], 3 to 40 characters; checked by the domain's Slug.
    slug text NOT NULL CONSTRAINT groups_slug_key UNIQUE,
    name text NOT NULL,
    approval_required boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL
);

-- Custom roles only: owner, admin and member are built into every group and never stored.
CREATE TABLE group_roles (
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    name text NOT NULL,
    permissions text[] NOT NULL DEFAULT '{}',
    CONSTRAINT group_roles_pkey PRIMARY KEY (group_id, name)
);

CREATE TABLE group_members (
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    member_id uuid NOT NULL REFERENCES members (id),
    -- A built-in role or the name of one of the group's custom roles.
    role text NOT NULL,
    status text NOT NULL CONSTRAINT group_members_status_check CHECK (status IN ('active', 'pending')),
    -- When the member joined (active) or asked to (pending).
    joined_at timestamptz NOT NULL,
    CONSTRAINT group_members_pkey PRIMARY KEY (group_id, member_id)
);

-- A member's groups in join order (list_mine, shared-group checks, member deletion).
CREATE INDEX group_members_member_idx
    ON group_members (member_id, status, joined_at, group_id);
-- A group's members or join requests in join order.
CREATE INDEX group_members_group_idx
    ON group_members (group_id, status, joined_at, member_id);
-- A group's active owners (the last-owner rule).
CREATE INDEX group_members_owners_idx
    ON group_members (group_id) WHERE role = 'owner' AND status = 'active';

ALTER TABLE members
    ADD CONSTRAINT members_current_group_id_fkey
    FOREIGN KEY (current_group_id) REFERENCES groups (id) ON DELETE SET NULL;

-- Deleting a group clears the current group of the members on it.
CREATE INDEX members_current_group_idx
    ON members (current_group_id) WHERE current_group_id IS NOT NULL;
