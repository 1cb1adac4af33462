//! Connection URLs made fit for an error message or a log: the password, in the user
//! information or in a `password=` query parameter, becomes `***`; everything else is kept.

/// Query parameters that carry a secret in database URLs (`?password=…`, `?sslpassword=…`).
const SECRET_PARAMS: [&str; 2] = ["password", "sslpassword"];

const MASK: &str = "***";

/// `url` with its password masked: `postgres://u:***@h/db`. Text that is not a URL is
/// returned as it is, except for what looks like user information before an `@`.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return redact_unparsed(url);
    };
    let mut changed = false;
    if parsed.password().is_some() {
        changed = parsed.set_password(Some(MASK)).is_ok();
    }
    let secret = |k: &str| SECRET_PARAMS.iter().any(|s| k.eq_ignore_ascii_case(s));
    if parsed.query_pairs().any(|(k, _)| secret(&k)) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret(&k) {
                    MASK.into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
        changed = true;
    }
    if changed {
        parsed.to_string()
    } else {
        url.to_owned()
    }
}

/// For text the URL parser refuses: mask what stands between `user:` and the last `@` of
/// the authority.
fn redact_unparsed(text: &str) -> String {
    let Some(start) = text.find("://").map(|i| i + 3) else {
        return text.to_owned();
    };
    let rest = &text[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:{MASK}{}",
            &text[..start],
            &authority[..colon],
            &text[start + at..]
        ),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact_url("postgresql://u:p%40ss@h/db?sslmode=require"),
            "postgresql://u:***@h/db?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=secret"),
            "postgres://h/db?user=u&password=***"
        );
        assert_eq!(redact_url("mysql://u:p@h/db"), "mysql://u:***@h/db");
    }

    #[test]
    fn urls_without_secrets_are_unchanged() {
        for u in [
            "postgres://h/db",
            "postgres://user@h/db",
            "sqlite:x.db",
            "sqlite:.chaaskit/queue.db?mode=rwc",
            "sqlite::memory:",
            "not a url",
            "",
        ] {
            assert_eq!(redact_url(u), u);
        }
    }

    #[test]
    fn unparsable_urls_lose_their_password() {
        // An unencoded '@' and a bad port: the URL parser refuses them.
        assert_eq!(
            redact_url("postgres://u:p@ss@h:99999/db"),
            "postgres://u:***@h:99999/db"
        );
        assert!(!redact_url("postgres://u:p@ss@h/db").contains("ss@"));
    }
}
