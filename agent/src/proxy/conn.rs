//! Per-connection timeouts against slow and idle clients.
//!
//! hyper's own HTTP/1 header timer also runs while a keep-alive connection waits for its
//! next request, which would make it the idle timeout too. The proxy keeps the two apart,
//! as Go's `ReadHeaderTimeout` and `IdleTimeout` do: the header clock starts at the first
//! byte of a request head and stops when the head is complete; the idle clock runs while
//! no request is in progress and no head has started.
//!
//! The socket wrapper notes reads; the request handler notes requests starting and
//! finishing; a timer in the connection's task asks [`ConnState::check`] what to do.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// What a connection's timer should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Nothing yet; look again after this long.
    Wait(Duration),
    /// A request head has been arriving for longer than the header timeout: drop the
    /// connection.
    HeaderTimeout,
    /// No request for longer than the idle timeout: close the connection gracefully.
    Idle,
}

/// What the socket, the handler and the timer of one connection share.
#[derive(Debug)]
pub(crate) struct ConnState {
    epoch: Instant,
    in_flight: AtomicU32,
    /// Milliseconds since `epoch` when the last request finished (or the connection opened).
    idle_since: AtomicU64,
    /// Milliseconds since `epoch` plus one when a request head started; 0 for none.
    head_started: AtomicU64,
    /// HTTP/2 reads control frames between requests, so bytes do not mean a head started.
    http2: AtomicBool,
}

impl ConnState {
    /// A connection opened now.
    pub fn new() -> Self {
        ConnState::starting_at(Instant::now())
    }

    fn starting_at(epoch: Instant) -> Self {
        ConnState {
            epoch,
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            http2: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Bytes arrived from the client.
    fn on_read(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_started.load(Ordering::Relaxed) == 0
            && !self.http2.load(Ordering::Relaxed)
        {
            self.head_started
                .store(self.now_ms() + 1, Ordering::Relaxed);
        }
    }

    /// A request head was read completely and handed to the handler.
    pub fn request_started(&self, http2: bool) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(0, Ordering::Relaxed);
        if http2 {
            self.http2.store(true, Ordering::Relaxed);
        }
    }

    /// A request's response ended (or was abandoned).
    pub fn request_finished(&self) {
        if self.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.idle_since.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    /// What to do now.
    pub fn check(&self, header_timeout: Duration, idle_timeout: Duration) -> Check {
        self.check_at(self.now_ms(), header_timeout, idle_timeout)
    }

    fn check_at(&self, now_ms: u64, header_timeout: Duration, idle_timeout: Duration) -> Check {
        let header_ms = header_timeout.as_millis() as u64;
        let idle_ms = idle_timeout.as_millis() as u64;
        let head_started = self.head_started.load(Ordering::Relaxed);
        if head_started != 0 {
            let elapsed = now_ms.saturating_sub(head_started - 1);
            return if elapsed >= header_ms {
                Check::HeaderTimeout
            } else {
                Check::Wait(Duration::from_millis(header_ms - elapsed))
            };
        }
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Check::Wait(idle_timeout);
        }
        let elapsed = now_ms.saturating_sub(self.idle_since.load(Ordering::Relaxed));
        if elapsed >= idle_ms {
            Check::Idle
        } else {
            // A head may start in the meantime; look again no later than the header timeout.
            Check::Wait(Duration::from_millis((idle_ms - elapsed).min(header_ms)))
        }
    }
}

/// A socket that tells its [`ConnState`] when bytes arrive.
#[derive(Debug)]
pub(crate) struct TrackedIo<T> {
    io: T,
    state: Arc<ConnState>,
}

impl<T> TrackedIo<T> {
    pub fn new(io: T, state: Arc<ConnState>) -> Self {
        TrackedIo { io, state }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TrackedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.on_read();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TrackedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);

    fn state() -> ConnState {
        ConnState::starting_at(Instant::now())
    }

    #[test]
    fn idle_connection_closes_after_the_idle_timeout() {
        let state = state();
        assert_eq!(state.check_at(0, HEADER, IDLE), Check::Wait(HEADER));
        assert_eq!(
            state.check_at(55_000, HEADER, IDLE),
            Check::Wait(Duration::from_secs(5))
        );
        assert_eq!(state.check_at(60_000, HEADER, IDLE), Check::Idle);
    }

    #[test]
    fn header_clock_runs_from_first_byte_to_complete_head() {
        let state = state();
        state.head_started.store(1_000 + 1, Ordering::Relaxed);
        assert_eq!(
            state.check_at(4_000, HEADER, IDLE),
            Check::Wait(Duration::from_secs(7))
        );
        assert_eq!(state.check_at(11_000, HEADER, IDLE), Check::HeaderTimeout);
        // The head completed: the request is in flight, no clock runs.
        state.request_started(false);
        assert_eq!(state.check_at(500_000, HEADER, IDLE), Check::Wait(IDLE));
        // Bytes of the body or a pipelined request while busy start no header clock.
        state.on_read();
        assert_eq!(state.head_started.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn idle_clock_restarts_when_the_last_request_finishes() {
        let state = state();
        state.request_started(false);
        state.request_started(false);
        state.request_finished();
        assert_eq!(state.check_at(120_000, HEADER, IDLE), Check::Wait(IDLE));
        state.request_finished();
        let finished = state.idle_since.load(Ordering::Relaxed);
        assert_eq!(
            state.check_at(finished + 59_000, HEADER, IDLE),
            Check::Wait(Duration::from_secs(1))
        );
        assert_eq!(state.check_at(finished + 60_000, HEADER, IDLE), Check::Idle);
    }

    #[test]
    fn http2_control_frames_start_no_header_clock() {
        let state = state();
        state.request_started(true);
        state.request_finished();
        state.on_read();
        assert_eq!(state.head_started.load(Ordering::Relaxed), 0);
    }
}
