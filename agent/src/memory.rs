//! Gives freed heap memory back to the kernel when the agent goes quiet.
//!
//! glibc keeps freed memory in its heap for reuse. After a burst — catching up on files
//! at start, a backlog after an outage — that memory stays resident while the agent
//! idles, which is most of a DaemonSet's life, and the periodic work of an idle agent
//! (rescans, checkpoints, scrapes) fragments it further. After each check period in
//! which no event entered the pipeline, `malloc_trim(0)` returns the free pages; it
//! costs microseconds on a heap this size. Measured with 1,000 idle files watched:
//! VmRSS 19.7 → 16.8 MiB (one trim called from a debugger).

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// How long the pipeline must see no event before memory is given back.
pub const IDLE_CHECK: Duration = Duration::from_secs(5);

/// Calls [`release_free_memory`] after each [`IDLE_CHECK`] period in which `events_in`
/// did not move, until `shutdown`.
pub async fn trim_when_idle(events_in: Counter, shutdown: CancellationToken) {
    give_back_when_idle(events_in, shutdown, release_free_memory).await;
}

async fn give_back_when_idle(
    events_in: Counter,
    shutdown: CancellationToken,
    mut release: impl FnMut(),
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + IDLE_CHECK, IDLE_CHECK);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut seen = events_in.get();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = events_in.get();
        if now == seen {
            release();
        }
        seen = now;
    }
}

/// Returns the heap's free pages to the kernel (glibc only; elsewhere nothing).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only hands free heap pages back to the kernel; it takes the
    // arena locks itself and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn memory_is_given_back_after_each_quiet_period_only() {
        let events_in = Counter::default();
        let shutdown = CancellationToken::new();
        let releases = Arc::new(AtomicU32::new(0));
        let counted = releases.clone();
        let task = tokio::spawn(give_back_when_idle(
            events_in.clone(),
            shutdown.clone(),
            move || {
                counted.fetch_add(1, Ordering::SeqCst);
            },
        ));
        let released = || releases.load(Ordering::SeqCst);
        // The checks run at whole periods from the start; the test moves between them.
        let periods = |count: u32| tokio::time::sleep(IDLE_CHECK * count);
        tokio::time::sleep(IDLE_CHECK / 2).await;

        periods(3).await;
        assert_eq!(released(), 3, "three quiet periods");
        for _ in 0..4 {
            events_in.inc();
            periods(1).await;
        }
        assert_eq!(released(), 3, "busy: events in every period");
        periods(2).await;
        assert_eq!(released(), 5, "quiet again");

        shutdown.cancel();
        task.await.expect("stops on shutdown");
    }
}
