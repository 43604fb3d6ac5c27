//! Showing a connection URL in messages and logs without the credentials it may carry.

/// `url` with its user-info part (a user and password, or a token) replaced by `***`:
/// `postgres://app:secret@db:5432/custodia` → `postgres://***@db:5432/custodia`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{tail}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn credentials_are_hidden_and_the_rest_kept() {
        for (given, shown) in [
            (
                "postgres://app:s3cr@t@db:5432/custodia?sslmode=require",
                "postgres://***@db:5432/custodia?sslmode=require",
            ),
            ("nats://a-token@nats:4222", "nats://***@nats:4222"),
            ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
            ("postgres://db/x@y", "postgres://db/x@y"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact_url(given), shown);
        }
    }
}
