//! Copying bytes both ways between a client and its upstream, ending when both directions are
//! done (each side's end of stream is passed on as a write shutdown to the other) or when no
//! byte has moved either way for the idle timeout (nginx's stream `proxy_timeout`).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// How a relay ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// Both sides finished; bytes sent client → upstream and upstream → client.
    Done(u64, u64),
    /// Nothing moved for the idle timeout.
    Idle,
    /// A read or write failed on either side.
    Failed(io::Error),
}

/// When bytes last moved, as milliseconds since the relay started.
struct Activity {
    start: Instant,
    last: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    fn idle_deadline(&self, idle: Duration) -> Instant {
        self.start + Duration::from_millis(self.last.load(Ordering::Relaxed)) + idle
    }
}

/// A stream that records in [`Activity`] every read or write that moved bytes.
struct Tracked<'a, S> {
    inner: &'a mut S,
    activity: &'a Activity,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<'_, S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut *this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<'_, S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut *this.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Relays between `client` and `upstream` until both are done or `idle` passes without traffic.
pub(crate) async fn relay<C, U>(client: &mut C, upstream: &mut U, idle: Duration) -> Ended
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let activity = Activity {
        start: Instant::now(),
        last: AtomicU64::new(0),
    };
    let mut client = Tracked {
        inner: client,
        activity: &activity,
    };
    let mut upstream = Tracked {
        inner: upstream,
        activity: &activity,
    };
    let copy = tokio::io::copy_bidirectional(&mut client, &mut upstream);
    let watchdog = async {
        loop {
            let deadline = activity.idle_deadline(idle);
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    };
    tokio::select! {
        copied = copy => match copied {
            Ok((up, down)) => Ended::Done(up, down),
            Err(e) => Ended::Failed(e),
        },
        _ = watchdog => Ended::Idle,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn relays_both_ways_and_passes_end_of_stream_on() {
        let (mut client, mut client_side) = tokio::io::duplex(64);
        let (mut upstream_side, mut upstream) = tokio::io::duplex(64);
        let relay = tokio::spawn(async move {
            relay(&mut client_side, &mut upstream_side, Duration::from_secs(5)).await
        });
        assert!(client.write_all(b"ping").await.is_ok());
        assert!(client.shutdown().await.is_ok());
        let mut got = Vec::new();
        assert!(upstream.read_to_end(&mut got).await.is_ok());
        assert_eq!(got, b"ping");
        assert!(upstream.write_all(b"pong!").await.is_ok());
        drop(upstream);
        let mut back = Vec::new();
        assert!(client.read_to_end(&mut back).await.is_ok());
        assert_eq!(back, b"pong!");
        assert!(matches!(relay.await, Ok(Ended::Done(4, 5))));
    }

    #[tokio::test]
    async fn ends_when_nothing_moves_for_the_idle_timeout() {
        let idle = Duration::from_millis(400);
        let (mut client, mut client_side) = tokio::io::duplex(64);
        let (mut upstream_side, _upstream) = tokio::io::duplex(64);
        let started = Instant::now();
        let relay =
            tokio::spawn(async move { relay(&mut client_side, &mut upstream_side, idle).await });
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(client.write_all(b"x").await.is_ok());
        // Traffic at 250 ms moves the deadline to about 650 ms.
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(!relay.is_finished(), "still within the idle timeout");
        assert!(matches!(relay.await, Ok(Ended::Idle)));
        assert!(started.elapsed() >= Duration::from_millis(600));
    }
}
