//! Raw SQL that PostgreSQL prepares once per connection.
//!
//! diesel never caches a `sql_query` as a prepared statement (it cannot know the text is
//! constant), so every call would parse and plan its query again: on the hot paths that was
//! most of the database's work (planning the profile query took 4–5 times as long as running
//! it). Every query of this crate is a constant, so [`Cached`] tells diesel's statement cache
//! that it is safe to keep, keyed by the SQL text and the bind types.

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};

/// A query whose SQL text never changes: safe to prepare once and reuse.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cached<Q>(Q);

/// `.cached()` on a `sql_query(CONSTANT)` chain.
pub(crate) trait CachedExt: Sized {
    /// Marks the query as constant SQL, to be prepared once per connection.
    fn cached(self) -> Cached<Self> {
        Cached(self)
    }
}

impl<Q: QueryFragment<Pg>> CachedExt for Q {}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Cached<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for Cached<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Cached<Q> {
    type SqlType = Q::SqlType;
}
