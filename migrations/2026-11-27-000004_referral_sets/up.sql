-- Referral trees as disjoint sets (union-find), so that a redeem checks for a cycle in a few
-- index probes however deep the trees grow.
--
-- Every referral tree is one set. Each member points through `ref_parent` at another member of
-- the same tree; following it ends at the set's representative, the one member whose
-- `ref_parent` is NULL. The representative need not be the tree's root. Union by rank
-- (`ref_rank`) keeps every such path under log2(members) + 2 steps.
ALTER TABLE members
    ADD COLUMN ref_parent uuid REFERENCES members (id),
    ADD COLUMN ref_rank smallint NOT NULL DEFAULT 0;

-- Existing trees: every member points straight at the root of their tree, the representative;
-- a root with invitees has rank 1 (its set has height 1 and at least two members).
WITH RECURSIVE tree (id, root) AS (
    SELECT id, id FROM members WHERE referred_by IS NULL
  UNION ALL
    SELECT m.id, t.root FROM tree t JOIN members m ON m.referred_by = t.id
)
UPDATE members m SET ref_parent = t.root
FROM tree t
WHERE m.id = t.id AND t.root <> t.id;

UPDATE members r SET ref_rank = 1
WHERE r.referred_by IS NULL AND EXISTS (SELECT FROM members i WHERE i.referred_by = r.id);

-- A member created with a referrer (a sign-up with a code) joins the referrer's set: it points at
-- the set's representative, found by following `ref_parent` from the referrer, or at the
-- referrer itself when the referrer is not visible yet (a row inserted by the same statement).
-- It stays a leaf of the set for good (only representatives gain members), so no rank changes.
CREATE FUNCTION members_join_referrers_set() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH RECURSIVE up (id, parent, depth) AS (
        SELECT id, ref_parent, 0 FROM members WHERE id = NEW.referred_by
      UNION ALL
        SELECT m.id, m.ref_parent, up.depth + 1
        FROM up JOIN members m ON m.id = up.parent
        WHERE up.depth < 1000
    )
    SELECT id INTO NEW.ref_parent FROM up WHERE parent IS NULL;
    NEW.ref_parent := COALESCE(NEW.ref_parent, NEW.referred_by);
    RETURN NEW;
END
$$;

CREATE TRIGGER members_join_referrers_set
    BEFORE INSERT ON members
    FOR EACH ROW
    WHEN (NEW.referred_by IS NOT NULL AND NEW.ref_parent IS NULL)
    EXECUTE FUNCTION members_join_referrers_set();
