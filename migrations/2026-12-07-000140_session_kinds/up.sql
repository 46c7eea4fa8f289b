-- How a session treats its refresh tokens, fixed when it opens (onboard_members::SessionKind):
-- `rotating` (/api/v1: reuse after the grace is theft), `fixed` (referral-api's clients: the
-- token is never rotated), `rotating_keeps_old` (connect-hub's clients: rotated, earlier tokens
-- keep working). Refresh matches a token only within its session's kind.
ALTER TABLE sessions
    ADD COLUMN kind text NOT NULL DEFAULT 'rotating'
        CONSTRAINT sessions_kind_check CHECK (kind IN ('rotating', 'fixed', 'rotating_keeps_old'));
