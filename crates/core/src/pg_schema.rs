//! Prisma's `?schema=` in a PostgreSQL URL: the schema an app's tables live in. sqlx does not
//! know the parameter, so it is taken out of the URL here and honoured by the scheduler and the queue.

use crate::error::{QueueError, Result};
use crate::redact::redact_url;

/// The schema when neither an option nor the URL names one.
pub const DEFAULT_SCHEMA: &str = "public";

/// Longest PostgreSQL identifier, in bytes (`NAMEDATALEN - 1`).
const MAX_IDENTIFIER_BYTES: usize = 63;

/// `url` without its `schema` query parameter, and that parameter's value (percent-decoded),
/// as Prisma reads it. `field` names the setting in errors, e.g. `scheduler.databaseUrl`.
/// A URL without the parameter comes back unchanged.
pub fn split_schema(url: &str, field: &str) -> Result<(String, Option<String>)> {
    if !url.contains('?') {
        return Ok((url.to_owned(), None));
    }
    let mut parsed = url::Url::parse(url).map_err(|e| {
        QueueError::invalid(format!(
            "{field} {:?} is not a valid URL: {e}",
            redact_url(url)
        ))
    })?;
    let mut schema = None;
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter_map(|(k, v)| {
            if k == "schema" {
                schema = Some(v.into_owned());
                None
            } else {
                Some((k.into_owned(), v.into_owned()))
            }
        })
        .collect();
    let Some(schema) = schema else {
        return Ok((url.to_owned(), None));
    };
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    let schema = check_schema(&schema, &format!("the schema parameter of {field}"))?;
    Ok((parsed.to_string(), Some(schema.to_owned())))
}

/// `name` when it can name a PostgreSQL schema: 1 to 63 bytes, no control characters, not
/// reserved (`pg_…`); else an error naming `field` and the value.
pub fn check_schema<'a>(name: &'a str, field: &str) -> Result<&'a str> {
    let ok = !name.is_empty()
        && name.len() <= MAX_IDENTIFIER_BYTES
        && !name.chars().any(char::is_control)
        && !name.to_ascii_lowercase().starts_with("pg_");
    if ok {
        Ok(name)
    } else {
        Err(QueueError::invalid(format!(
            "{field} must be a PostgreSQL schema name of 1 to {MAX_IDENTIFIER_BYTES} bytes, without control characters and not starting with pg_, got {name:?}"
        )))
    }
}

/// `name` as a quoted SQL identifier (for DDL and `search_path`).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_parameter_is_taken_out_and_the_rest_kept() {
        let (url, schema) =
            split_schema("postgres://u:p@h:5432/db?schema=app&sslmode=disable", "f").unwrap();
        assert_eq!(url, "postgres://u:p@h:5432/db?sslmode=disable");
        assert_eq!(schema.as_deref(), Some("app"));
        let (url, schema) = split_schema("postgresql://h/db?schema=my%20app", "f").unwrap();
        assert_eq!(url, "postgresql://h/db");
        assert_eq!(schema.as_deref(), Some("my app"));
        let (url, schema) = split_schema("postgres://h/db?sslmode=disable", "f").unwrap();
        assert_eq!(url, "postgres://h/db?sslmode=disable");
        assert_eq!(schema, None);
        assert_eq!(split_schema("postgres://h/db", "f").unwrap().1, None);
    }

    #[test]
    fn a_schema_that_cannot_be_one_is_refused_naming_the_field() {
        for bad in ["", "pg_catalog", "a\u{0}b", &"x".repeat(64)] {
            let e = check_schema(bad, "providerConfig.schema").unwrap_err();
            assert!(
                e.to_string().starts_with("providerConfig.schema must be"),
                "{e}"
            );
        }
        let e = split_schema("postgres://u:secret@h/db?schema=", "scheduler.databaseUrl")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("schema parameter of scheduler.databaseUrl"),
            "{e}"
        );
        assert!(!e.contains("secret"), "{e}");
        assert_eq!(check_schema("app-1", "f").unwrap(), "app-1");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
