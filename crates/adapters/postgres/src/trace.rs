//! A span per SQL statement, for trace export: the statement's text, never its values.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use tracing::Span;
use tracing::field::Empty;

/// From now on, every new connection (of every pool) opens a span for each statement it runs,
/// a child of the span that ran it (the use case's), closed when the answer is in. The span
/// (target `onboard_postgres::sql`, debug level) carries the SQL text with `$n` placeholders,
/// never the bound values. Connections opened before keep running without.
pub fn trace_sql_statements() {
    let _ = diesel::connection::set_default_instrumentation(|| Some(Box::new(SqlSpans::default())));
}

/// The open statement spans of one connection, oldest first (a pipelined connection answers in
/// order).
#[derive(Debug, Default)]
struct SqlSpans {
    open: VecDeque<Span>,
}

impl Instrumentation for SqlSpans {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { query, .. } => {
                let sql = statement_text(query);
                let operation = operation(&sql);
                self.open.push_back(tracing::debug_span!(
                    target: "onboard_postgres::sql",
                    "sql",
                    otel.name = operation,
                    otel.kind = "client",
                    otel.status_code = Empty,
                    db.system.name = "postgresql",
                    db.operation.name = operation,
                    db.query.text = %sql,
                    error.type = Empty,
                ));
            }
            InstrumentationEvent::FinishQuery { error, .. } => {
                if let Some(span) = self.open.pop_front()
                    && let Some(error) = error
                {
                    span.record("otel.status_code", "ERROR");
                    span.record("error.type", tracing::field::display(error_type(error)));
                }
            }
            _ => {}
        }
    }
}

/// The SQL of `query` without its binds: diesel writes `<sql> -- binds: [..]`, and the writer
/// stops taking text (so the values are never even formatted) at the marker.
fn statement_text(query: &dyn fmt::Display) -> String {
    struct UntilBinds(String);
    impl fmt::Write for UntilBinds {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0.push_str(s);
            match self.0.find(" -- binds:") {
                Some(at) => {
                    self.0.truncate(at);
                    Err(fmt::Error)
                }
                None => Ok(()),
            }
        }
    }
    let mut text = UntilBinds(String::new());
    let _ = write!(text, "{query}");
    text.0
}

/// The statement's first keyword (`SELECT`, `INSERT`, `WITH`, `BEGIN`, ...).
fn operation(sql: &str) -> &'static str {
    let first = sql.split_whitespace().next().unwrap_or_default();
    const KNOWN: [&str; 10] = [
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "WITH",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "SET",
        "SAVEPOINT",
    ];
    KNOWN.iter().find(|k| k.eq_ignore_ascii_case(first)).copied().unwrap_or("SQL")
}

/// A short class of a failed statement (no message: it may quote values).
fn error_type(error: &diesel::result::Error) -> &'static str {
    use diesel::result::{DatabaseErrorKind as Kind, Error};
    match error {
        Error::DatabaseError(Kind::UniqueViolation, _) => "unique_violation",
        Error::DatabaseError(Kind::ForeignKeyViolation, _) => "foreign_key_violation",
        Error::DatabaseError(Kind::SerializationFailure, _) => "serialization_failure",
        Error::DatabaseError(Kind::CheckViolation, _) => "check_violation",
        Error::DatabaseError(..) => "database_error",
        Error::NotFound => "not_found",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Query;
    impl fmt::Display for Query {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "SELECT 1 FROM members WHERE phone = $1 -- binds: [\"+79170000001\"]")
        }
    }

    #[test]
    fn a_statement_span_has_the_sql_without_its_values() {
        let text = statement_text(&Query);
        assert_eq!(text, "SELECT 1 FROM members WHERE phone = $1");
        assert_eq!(operation(&text), "SELECT");
        assert_eq!(operation("with x as (select 1) select * from x"), "WITH");
    }
}
