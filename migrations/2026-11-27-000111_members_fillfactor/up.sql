-- Room on every page of `members` for the row's next version: an update that changes no
-- indexed column (a profile edit, a representative's `ref_parent`/`ref_rank` in a redeem, a
-- block) can then stay on its page as a HOT update, with no new entry in any of the table's
-- six indexes. On a full page (the default fillfactor of 100) every such update moved the row
-- and wrote all six indexes, on random pages of a large table (docs/performance.md).
-- Applies to pages written from now on; `VACUUM FULL members` repacks older ones.
ALTER TABLE members SET (fillfactor = 90);
