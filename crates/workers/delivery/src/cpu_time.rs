//! CPU time of the calling thread, for honest "per core" figures on a shared machine
//! (wall time counts the time a thread waits for a core).

use std::time::Duration;

/// The calling thread's CPU time so far: Linux's `/proc/thread-self/schedstat` (first
/// field, nanoseconds on a CPU); `None` where that is not available.
pub fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// Runs `work`, returning its result and the CPU time it took on this thread (wall time
/// where CPU time is not available).
pub fn measure<T>(work: impl FnOnce() -> T) -> (T, Duration) {
    let cpu_before = thread_cpu_time();
    let wall = std::time::Instant::now();
    let result = work();
    let took = match (cpu_before, thread_cpu_time()) {
        (Some(before), Some(after)) => after.saturating_sub(before),
        _ => wall.elapsed(),
    };
    (result, took)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_busy_work() {
        let (sum, took) = measure(|| (0..2_000_000u64).map(std::hint::black_box).sum::<u64>());
        assert_eq!(sum, 1_999_999_000_000);
        assert!(took > Duration::ZERO);
    }
}
