//! A database URL as it may be shown (in `Debug` output, and so in any log
//! line or panic that prints settings): the password replaced by `***`, in
//! both forms libpq takes (`postgres://user:password@host/db` and
//! `host=... password=...`).

/// `url` with its password, if any, replaced by `***`.
pub fn url(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        // The user info ends at the last `@` before the path (a password may hold `@`, `/` may not appear unescaped).
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let Some(at) = rest[..authority_end].rfind('@') else { return url.to_string() };
        let user_info = &rest[..at];
        return match user_info.find(':') {
            Some(colon) => format!("{}{}:***{}", &url[..scheme_end + 3], &user_info[..colon], &rest[at..]),
            None => url.to_string(),
        };
    }
    // Key-value form: every `password=` value, quoted or not.
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(found) = rest.find("password") {
        let after = &rest[found + "password".len()..];
        let trimmed = after.trim_start();
        let starts_word = found == 0 || rest[..found].ends_with(char::is_whitespace);
        if !starts_word || !trimmed.starts_with('=') {
            out.push_str(&rest[..found + "password".len()]);
            rest = after;
            continue;
        }
        out.push_str(&rest[..found]);
        out.push_str("password=***");
        let value = trimmed[1..].trim_start();
        rest = if let Some(quoted) = value.strip_prefix('\'') {
            // Up to the closing quote (a backslash escapes one).
            let mut end = quoted.len();
            let mut escaped = false;
            for (i, c) in quoted.char_indices() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '\'' => {
                        end = i + 1;
                        break;
                    }
                    _ => {}
                }
            }
            &quoted[end..]
        } else {
            &value[value.find(char::is_whitespace).unwrap_or(value.len())..]
        };
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::url;

    #[test]
    fn passwords_are_hidden_in_both_forms() {
        assert_eq!(url("postgres://app:s3cret@db:5432/objects"), "postgres://app:***@db:5432/objects");
        assert_eq!(url("postgresql://app:p@ss:w@rd@db/objects?sslmode=require"), "postgresql://app:***@db/objects?sslmode=require");
        assert_eq!(url("host=db user=app password=s3cret dbname=objects"), "host=db user=app password=*** dbname=objects");
        assert_eq!(url("host=db password = 'it\\'s a secret' dbname=objects"), "host=db password=*** dbname=objects");
        assert_eq!(url("password=s3cret"), "password=***");
    }

    #[test]
    fn settings_never_print_the_password() {
        let settings = super::super::PostgresSettings::new("postgres://app:s3cret@db:5432/objects");
        let shown = format!("{settings:?} {settings:#?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("postgres://app:***@db:5432/objects"), "{shown}");
    }

    #[test]
    fn urls_without_a_password_are_shown_as_they_are() {
        for plain in ["postgres://postgres@127.0.0.1:5432/objects", "postgres://db/objects", "host=db user=app dbname=passwords", "host=db mypassword=x"] {
            assert_eq!(url(plain), plain);
        }
    }
}
