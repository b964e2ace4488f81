//! Why a first connection to PostgreSQL failed, in words an operator can act
//! on: a URL that does not parse, nothing listening at the address, a host
//! that does not resolve, a database that does not exist, a user refused,
//! no connection slots left. The URL itself is never echoed (it may carry a
//! password); its host, port, database and user are ([`shown`]).

use std::error::Error as _;

use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::Config;

use crate::error::StoreError;

/// A database URL that does not parse.
pub fn bad_url(e: tokio_postgres::Error) -> StoreError {
    StoreError::Postgres(format!(
        "the database URL is not valid ({e}); expected postgres://USER:PASSWORD@HOST:PORT/DATABASE (set with --database-url or DATABASE_URL)"
    ))
}

/// Where a configuration points: host, port, user and database (never the password).
fn target(config: &Config) -> (String, u16, &str, &str) {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        #[cfg(unix)]
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("(none)");
    let database = config.get_dbname().unwrap_or(user);
    (host, port, user, database)
}

/// A database URL as it may be shown (settings' `Debug`, so any log line or
/// panic that prints them): read by the driver's own parser, whichever form
/// it takes (`postgres://...`, query parameters included, or libpq's
/// `key=value`), and written again from where it points, a password as `***`.
pub fn shown(url: &str) -> String {
    let Ok(config) = url.parse::<Config>() else { return "(a database URL that does not parse)".into() };
    let (host, port, user, database) = target(&config);
    let password = if config.get_password().is_some() { ":***" } else { "" };
    format!("postgres://{user}{password}@{host}:{port}/{database}")
}

/// A failed first connection with `config`, explained.
pub fn explain(config: &Config, e: &(dyn std::error::Error + 'static)) -> StoreError {
    let (host, port, user, database) = target(config);
    let at = format!("PostgreSQL at {host}:{port}");
    let Some(pg) = postgres_error(e) else {
        return StoreError::Postgres(format!("cannot connect to {at}: {e}"));
    };
    if let Some(db) = pg.as_db_error() {
        let message = if *db.code() == SqlState::INVALID_CATALOG_NAME {
            format!(
                "database \"{database}\" does not exist on {at}: create it (createdb -h {host} -p {port} -U {user} {database}) or point --database-url at one that exists"
            )
        } else if *db.code() == SqlState::INVALID_PASSWORD || *db.code() == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
            format!("{at} refused user \"{user}\" ({}): check the user and password in --database-url", db.message())
        } else if *db.code() == SqlState::TOO_MANY_CONNECTIONS {
            format!("{at} has no connection slots left ({}): raise its max_connections or stop idle clients", db.message())
        } else {
            format!("{at} refused the connection: {} (SQLSTATE {})", db.message(), db.code().code())
        };
        return StoreError::Postgres(message);
    }
    let mut source = pg.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            let message = match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    format!("nothing accepts connections at {host}:{port} (connection refused): is PostgreSQL running there, and are the host and port in --database-url right?")
                }
                std::io::ErrorKind::TimedOut => format!("{at} did not answer in time: is the host reachable (firewall, network)?"),
                _ if io.to_string().contains("lookup") || io.to_string().contains("resolve") => {
                    format!("the host \"{host}\" in --database-url does not resolve ({io})")
                }
                _ => format!("cannot connect to {at}: {io}"),
            };
            return StoreError::Postgres(message);
        }
        source = cause.source();
    }
    StoreError::Postgres(format!("cannot connect to {at}: {pg}"))
}

/// The driver's error inside `e` (itself, or the pool's backend error).
pub(super) fn postgres_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a tokio_postgres::Error> {
    e.downcast_ref::<tokio_postgres::Error>().or_else(|| match e.downcast_ref::<deadpool_postgres::PoolError>() {
        Some(deadpool_postgres::PoolError::Backend(inner)) => Some(inner),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn passwords_are_hidden_in_every_form() {
        assert_eq!(shown("postgres://app:s3cret@db:5432/objects"), "postgres://app:***@db:5432/objects");
        assert_eq!(shown("postgresql://app:p%40ss@db/objects?sslmode=disable"), "postgres://app:***@db:5432/objects");
        assert_eq!(shown("postgres://app@db/objects?password=s3cret"), "postgres://app:***@db:5432/objects");
        assert_eq!(shown("host=db user=app password=s3cret dbname=objects"), "postgres://app:***@db:5432/objects");
        assert_eq!(shown("host=db password = 'it\\'s a secret' user=app dbname=objects"), "postgres://app:***@db:5432/objects");
        assert_eq!(shown("postgres://app:s3cret@db:5432/objects?bogus=1"), "(a database URL that does not parse)");
    }

    #[test]
    fn settings_never_print_the_password() {
        let settings = super::super::PostgresSettings::new("postgres://app:s3cret@db:5432/objects");
        let shown = format!("{settings:?} {settings:#?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("postgres://app:***@db:5432/objects"), "{shown}");
    }

    #[test]
    fn urls_without_a_password_show_where_they_point() {
        assert_eq!(shown("postgres://postgres@127.0.0.1:5432/objects"), "postgres://postgres@127.0.0.1:5432/objects");
        assert_eq!(shown("host=db user=app dbname=passwords"), "postgres://app@db:5432/passwords");
    }
}
