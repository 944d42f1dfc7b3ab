//! The health of one address, as lua-resty-healthcheck keeps it: four states and four 8-bit
//! counters (successes, HTTP failures, TCP failures, timeouts), packed in one atomic word and
//! changed with compare-and-swap, so reports from any number of requests and probes never lock.
//!
//! A success clears the failure counters and a failure clears the success counter. A counter
//! reaching its limit moves the address to `healthy` or `unhealthy`; a first failure of a healthy
//! address makes it `mostly_healthy` (still used), a first success of an unhealthy one
//! `mostly_unhealthy` (still not used). A limit of 0 disables the counter. Results matching the
//! current full state are not counted. Manual `healthy`/`unhealthy` sets the state and clears
//! the counters.
//!
//! The address also carries what the algorithms need beyond its weight and survives
//! configuration rebuilds: requests in flight (least-connections) and the peak-EWMA of its
//! response times (latency).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use super::spec::{Limits, Statuses};

/// Seconds over which the EWMA of response times decays (Kong: 10).
const DECAY_SECONDS: f64 = 10.0;

/// The health states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// In use.
    Healthy,
    /// In use, with failures counted.
    MostlyHealthy,
    /// Not in use, with successes counted.
    MostlyUnhealthy,
    /// Not in use.
    Unhealthy,
}

impl State {
    fn bits(self) -> u64 {
        match self {
            State::Healthy => 0,
            State::MostlyHealthy => 1,
            State::MostlyUnhealthy => 2,
            State::Unhealthy => 3,
        }
    }

    fn from_bits(b: u64) -> State {
        match b & 3 {
            0 => State::Healthy,
            1 => State::MostlyHealthy,
            2 => State::MostlyUnhealthy,
            _ => State::Unhealthy,
        }
    }

    /// Whether the balancer may use the address.
    pub fn available(self) -> bool {
        matches!(self, State::Healthy | State::MostlyHealthy)
    }
}

/// What a request or probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// A good answer (or a TCP probe connected).
    Success,
    /// An answer with an unhealthy status (or no valid answer).
    HttpFailure,
    /// Could not connect, or the connection broke.
    TcpFailure,
    /// Timed out.
    Timeout,
}

impl Report {
    /// How a response status counts under `healthy`/`unhealthy`; `None` when in neither list.
    pub fn of_status(status: u16, healthy: &Statuses, unhealthy: &Statuses) -> Option<Report> {
        if healthy.contains(status) {
            Some(Report::Success)
        } else if unhealthy.contains(status) || status == 0 {
            Some(Report::HttpFailure)
        } else {
            None
        }
    }

    /// Bit offset of its counter in the packed word.
    fn shift(self) -> u32 {
        match self {
            Report::Success => 0,
            Report::HttpFailure => 8,
            Report::TcpFailure => 16,
            Report::Timeout => 24,
        }
    }

    fn limit(self, limits: &Limits) -> u8 {
        match self {
            Report::Success => limits.successes,
            Report::HttpFailure => limits.http_failures,
            Report::TcpFailure => limits.tcp_failures,
            Report::Timeout => limits.timeouts,
        }
    }
}

const SUCCESS_MASK: u64 = 0xff;
const FAILURE_MASK: u64 = 0xffff_ff00;
const STATE_SHIFT: u32 = 32;

/// The node-wide state of one address.
#[derive(Debug, Default)]
pub struct AddrState {
    /// Counters in the low 32 bits, the state above.
    word: AtomicU64,
    /// Requests in flight.
    in_flight: AtomicU32,
    /// EWMA of response times, seconds, as `f64` bits.
    ewma: AtomicU64,
    /// When the EWMA was last updated, microseconds since the node's epoch.
    touched: AtomicU64,
    /// `ln(ewma)` as `f64` bits, kept with each update so picks compare without `exp`.
    log_ewma: AtomicU64,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Microseconds since the node's epoch (the EWMA clock).
pub fn now_micros() -> u64 {
    micros_at(Instant::now())
}

/// [`now_micros`] for an instant already read.
pub fn micros_at(at: Instant) -> u64 {
    at.saturating_duration_since(epoch()).as_micros() as u64
}

impl AddrState {
    /// A healthy address with nothing counted.
    pub fn new() -> AddrState {
        AddrState::default()
    }

    /// The current state.
    pub fn state(&self) -> State {
        State::from_bits(self.word.load(Ordering::Relaxed) >> STATE_SHIFT)
    }

    /// Whether the balancer may use it.
    pub fn available(&self) -> bool {
        self.state().available()
    }

    /// Counts `report` against `limits`; returns the new state when the address crossed to
    /// fully healthy or unhealthy.
    pub fn report(&self, report: Report, limits: &Limits) -> Option<State> {
        let limit = report.limit(limits);
        if limit == 0 {
            return None;
        }
        let towards_health = report == Report::Success;
        let mut current = self.word.load(Ordering::Relaxed);
        loop {
            let state = State::from_bits(current >> STATE_SHIFT);
            if (towards_health && state == State::Healthy)
                || (!towards_health && state == State::Unhealthy)
            {
                return None;
            }
            let shift = report.shift();
            let count = (((current >> shift) & 0xff) + 1).min(255);
            let mut counters = (current & 0xffff_ffff & !(0xff << shift)) | (count << shift);
            counters &= if towards_health {
                SUCCESS_MASK
            } else {
                FAILURE_MASK
            };
            let next_state = if count >= u64::from(limit) {
                if towards_health {
                    State::Healthy
                } else {
                    State::Unhealthy
                }
            } else if state == State::Healthy && !towards_health {
                State::MostlyHealthy
            } else if state == State::Unhealthy && towards_health {
                State::MostlyUnhealthy
            } else {
                state
            };
            let word = (next_state.bits() << STATE_SHIFT) | counters;
            match self.word.compare_exchange_weak(
                current,
                word,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    let crossed = next_state != state
                        && matches!(next_state, State::Healthy | State::Unhealthy);
                    return crossed.then_some(next_state);
                }
                Err(seen) => current = seen,
            }
        }
    }

    /// Sets the state (manual `healthy`/`unhealthy`) and clears the counters; returns whether
    /// the state changed.
    pub fn set(&self, healthy: bool) -> bool {
        let state = if healthy {
            State::Healthy
        } else {
            State::Unhealthy
        };
        let before = self
            .word
            .swap(state.bits() << STATE_SHIFT, Ordering::AcqRel);
        State::from_bits(before >> STATE_SHIFT).available() != healthy
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Marks a request in flight until the guard drops.
    pub fn enter(self: &std::sync::Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// The response-time EWMA now (decayed towards 0 since its last update), seconds.
    pub fn ewma(&self) -> f64 {
        self.ewma_at(now_micros())
    }

    /// The EWMA at `now` ([`now_micros`]): one clock read serves a whole pick.
    pub fn ewma_at(&self, now: u64) -> f64 {
        let value = f64::from_bits(self.ewma.load(Ordering::Relaxed));
        if value == 0.0 {
            return 0.0;
        }
        let touched = self.touched.load(Ordering::Relaxed);
        decay(value, touched, 0.0, now)
    }

    /// Whether a response time was ever recorded.
    pub fn has_ewma(&self) -> bool {
        self.touched.load(Ordering::Relaxed) != 0
    }

    /// Seeds the EWMA of a new address (Kong's slow start: the average of the others).
    pub fn seed_ewma(&self, seconds: f64) {
        if self
            .touched
            .compare_exchange(0, now_micros().max(1), Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.store_ewma(seconds);
        }
    }

    fn store_ewma(&self, value: f64) {
        self.ewma.store(value.to_bits(), Ordering::Relaxed);
        self.log_ewma.store(value.ln().to_bits(), Ordering::Relaxed);
    }

    /// `ln` of the EWMA decayed to `now`: `ln(ewma) - elapsed / 10 s`, the same order as the
    /// EWMA itself, with no `exp` (`-inf` before any sample).
    pub fn log_ewma_at(&self, now: u64) -> f64 {
        let touched = self.touched.load(Ordering::Relaxed);
        if touched == 0 {
            return f64::NEG_INFINITY;
        }
        let log = f64::from_bits(self.log_ewma.load(Ordering::Relaxed));
        log - now.saturating_sub(touched) as f64 / 1e6 / DECAY_SECONDS
    }

    /// Records a response time (racing updates may lose one sample; they never block).
    pub fn record(&self, seconds: f64) {
        let now = now_micros().max(1);
        let touched = self.touched.swap(now, Ordering::AcqRel);
        let value = f64::from_bits(self.ewma.load(Ordering::Relaxed));
        let next = if touched == 0 {
            seconds
        } else {
            decay(value, touched, seconds, now)
        };
        self.store_ewma(next);
    }
}

/// Kong's decay: `ewma * w + rtt * (1 - w)` with `w = exp(-elapsed / 10 s)`.
fn decay(ewma: f64, touched: u64, rtt: f64, now: u64) -> f64 {
    let elapsed = now.saturating_sub(touched) as f64 / 1e6;
    let w = (-elapsed / DECAY_SECONDS).exp();
    ewma * w + rtt * (1.0 - w)
}

/// One request in flight on an address; dropping it ends it.
#[derive(Debug)]
pub struct InFlight(std::sync::Arc<AddrState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(successes: u8, http: u8, tcp: u8, timeouts: u8) -> Limits {
        Limits {
            successes,
            http_failures: http,
            tcp_failures: tcp,
            timeouts,
        }
    }

    #[test]
    fn failures_trip_then_successes_revive() {
        let s = AddrState::new();
        let l = limits(2, 3, 2, 1);
        assert_eq!(s.report(Report::TcpFailure, &l), None);
        assert_eq!(s.state(), State::MostlyHealthy);
        assert!(s.available());
        assert_eq!(s.report(Report::TcpFailure, &l), Some(State::Unhealthy));
        assert!(!s.available());
        // Fully unhealthy: more failures are not counted.
        assert_eq!(s.report(Report::Timeout, &l), None);
        assert_eq!(s.report(Report::Success, &l), None);
        assert_eq!(s.state(), State::MostlyUnhealthy);
        assert_eq!(s.report(Report::Success, &l), Some(State::Healthy));
    }

    #[test]
    fn a_success_clears_failures() {
        let s = AddrState::new();
        let l = limits(1, 2, 0, 0);
        s.report(Report::HttpFailure, &l);
        s.report(Report::Success, &l);
        assert_eq!(s.report(Report::HttpFailure, &l), None);
        assert!(s.available());
        assert_eq!(s.report(Report::HttpFailure, &l), Some(State::Unhealthy));
    }

    #[test]
    fn zero_limits_count_nothing() {
        let s = AddrState::new();
        for _ in 0..10 {
            assert_eq!(s.report(Report::TcpFailure, &Limits::default()), None);
        }
        assert_eq!(s.state(), State::Healthy);
    }

    #[test]
    fn manual_state_clears_counters() {
        let s = AddrState::new();
        let l = limits(0, 2, 0, 0);
        s.report(Report::HttpFailure, &l);
        assert!(s.set(false));
        assert!(!s.available());
        assert!(s.set(true));
        assert_eq!(s.state(), State::Healthy);
        assert_eq!(s.report(Report::HttpFailure, &l), None);
    }

    #[test]
    fn ewma_follows_samples() {
        let s = AddrState::new();
        assert!(!s.has_ewma());
        s.record(0.5);
        assert!(s.has_ewma());
        assert!((s.ewma() - 0.5).abs() < 0.01);
    }
}
