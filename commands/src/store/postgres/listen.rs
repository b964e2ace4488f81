//! Following commits made by other processes: `LISTEN` on the schema's
//! channel moves the head watch, so projections elsewhere wake without polling.
//! The writer notifies in the committing transaction, so a notification is
//! only delivered once its events are visible.

use std::time::Duration;

use futures_util::{future, StreamExt};
use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, Config, NoTls};

/// The notification channel of a schema.
pub(crate) fn channel(schema: Option<&str>) -> String {
    match schema {
        Some(schema) => format!("objectstack_events_{schema}"),
        None => "objectstack_events".into(),
    }
}

/// Listens until `head_tx` has no receivers left; reconnects after failures and
/// re-reads the head then, so a notification missed while away is not lost.
pub(crate) async fn run(config: Config, channel: String, head_tx: watch::Sender<u64>) {
    let mut backoff = Duration::from_millis(200);
    while !head_tx.is_closed() {
        match listen_once(&config, &channel, &head_tx).await {
            Ok(()) if head_tx.is_closed() => return,
            Ok(()) => {
                // The server ended the connection without an error (a restart, an idle timeout).
                tracing::warn!(channel, "event notifications ended; reconnecting");
                tokio::time::sleep(backoff).await;
            }
            Err(error) => {
                tracing::warn!(%error, channel, "event notifications interrupted; reconnecting");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn listen_once(config: &Config, channel: &str, head_tx: &watch::Sender<u64>) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (message_tx, mut message_rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = stream.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if message_tx.send(Ok(n.payload().to_string())).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = message_tx.send(Err(e));
                    return;
                }
            }
        }
    });
    client.batch_execute(&format!("LISTEN \"{}\"", channel.replace('"', "\"\""))).await?;
    // Anything committed before LISTEN took effect is covered by reading the head now.
    let head: i64 = client.query_one("SELECT coalesce(max(position), 0) FROM events", &[]).await?.get(0);
    head_tx.send_modify(|h| *h = (*h).max(head as u64));
    let closed = head_tx.closed();
    tokio::pin!(closed);
    loop {
        let next = message_rx.recv();
        tokio::pin!(next);
        match future::select(next, closed.as_mut()).await {
            future::Either::Left((Some(Ok(payload)), _)) => {
                if let Ok(position) = payload.parse::<u64>() {
                    head_tx.send_modify(|h| *h = (*h).max(position));
                }
            }
            future::Either::Left((Some(Err(e)), _)) => {
                driver.abort();
                return Err(e);
            }
            future::Either::Left((None, _)) => {
                driver.abort();
                // The connection ended without an error: `run` reconnects.
                return Ok(());
            }
            future::Either::Right(_) => {
                driver.abort();
                return Ok(());
            }
        }
    }
}
