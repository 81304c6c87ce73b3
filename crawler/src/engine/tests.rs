//! Engine rules checked on tokio's paused clock: the virtual time is exact, so spacing and
//! backoff are asserted as facts, not as timings.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::*;

fn cfg() -> EngineConfig {
    EngineConfig {
        concurrency: 4,
        per_ip_interval: Duration::from_secs(1),
        timeout: Duration::from_secs(2),
        attempts: 3,
        backoff: Duration::from_secs(1),
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn visits(rx: &mut mpsc::Receiver<Observation>) -> Vec<Visit> {
    let mut out = Vec::new();
    while let Ok(Observation::Visit(v)) = rx.try_recv() {
        out.push(v);
    }
    out
}

#[tokio::test(start_paused = true)]
async fn one_query_per_second_per_ip_across_ports() {
    let (rec, mut rx) = Recorder::channel(100);
    let engine = Engine::new(cfg(), rec);
    let t0 = Instant::now();
    let starts = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for port in [1, 2, 3] {
        for ip in ["127.0.0.1", "127.0.0.2"] {
            let engine = engine.clone();
            let starts = starts.clone();
            let target = Target::addr(ProbeKind::DhtPing, addr(&format!("{ip}:{port}")));
            tasks.push(tokio::spawn(async move {
                engine
                    .probe(&target, || {
                        starts.lock().unwrap().push((ip, t0.elapsed()));
                        async { Ok::<_, ProbeError>(()) }
                    })
                    .await
            }));
        }
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let starts = starts.lock().unwrap().clone();
    for ip in ["127.0.0.1", "127.0.0.2"] {
        let mut at: Vec<Duration> = starts.iter().filter(|(i, _)| *i == ip).map(|(_, d)| *d).collect();
        at.sort();
        assert_eq!(at.len(), 3);
        assert!(at[0] < Duration::from_millis(1), "{at:?}");
        assert!(
            at[1] >= Duration::from_secs(1) && at[2] >= Duration::from_secs(2),
            "{at:?}"
        );
    }
    assert_eq!(visits(&mut rx).len(), 6);
}

#[tokio::test(start_paused = true)]
async fn no_answer_is_retried_with_doubling_backoff_and_every_attempt_recorded() {
    let (rec, mut rx) = Recorder::channel(100);
    let engine = Engine::new(
        EngineConfig {
            per_ip_interval: Duration::ZERO,
            ..cfg()
        },
        rec,
    );
    let t0 = Instant::now();
    let tries = AtomicU32::new(0);
    let starts = Mutex::new(Vec::new());
    let target = Target::addr(ProbeKind::DhtFindNode, addr("127.0.0.9:6881"));
    let r: Result<(), _> = engine
        .probe(&target, || {
            tries.fetch_add(1, Ordering::Relaxed);
            starts.lock().unwrap().push(t0.elapsed());
            std::future::pending()
        })
        .await;
    assert_eq!(r.unwrap_err().outcome, Outcome::Timeout);
    assert_eq!(tries.load(Ordering::Relaxed), 3);
    // attempt 1 at 0, times out at 2, waits 1 -> attempt 2 at 3, times out at 5, waits 2 -> 7.
    assert_eq!(
        *starts.lock().unwrap(),
        [Duration::ZERO, Duration::from_secs(3), Duration::from_secs(7)]
    );
    let v = visits(&mut rx);
    assert_eq!(v.iter().map(|v| v.attempt).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(v.iter().all(|v| v.outcome == Outcome::Timeout && v.error.is_some()));
    assert!(v.iter().all(|v| v.rtt_us == 2_000_000), "{v:?}");
    assert_eq!(engine.stats().failed(), 3);
}

#[tokio::test(start_paused = true)]
async fn an_answer_that_is_wrong_is_not_retried() {
    let (rec, mut rx) = Recorder::channel(100);
    let engine = Engine::new(cfg(), rec);
    let tries = AtomicU32::new(0);
    let target = Target::addr(ProbeKind::PeerHandshake, addr("127.0.0.9:6881"));
    let r: Result<(), _> = engine
        .probe(&target, || {
            tries.fetch_add(1, Ordering::Relaxed);
            async { Err(ProbeError::new(Outcome::ProtocolError, "bad handshake").with_raw(b"junk".to_vec())) }
        })
        .await;
    assert_eq!(r.unwrap_err().outcome, Outcome::ProtocolError);
    assert_eq!(tries.load(Ordering::Relaxed), 1);
    let v = visits(&mut rx);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].raw.as_deref(), Some(&b"junk"[..]));
}

#[tokio::test(start_paused = true)]
async fn success_after_a_retry_describes_the_reply() {
    struct Pong([u8; 20]);
    impl Reply for Pong {
        fn describe(&self, visit: &mut Visit) {
            visit.remote_id = Some(self.0);
            visit.client = Some(b"LT\x02\x08".to_vec());
        }
    }
    let (rec, mut rx) = Recorder::channel(100);
    let engine = Engine::new(cfg(), rec);
    let tries = AtomicU32::new(0);
    let target = Target::addr(ProbeKind::DhtPing, addr("127.0.0.9:6881")).about(InfoHash([7; 20]));
    let r = engine
        .probe(&target, || {
            let n = tries.fetch_add(1, Ordering::Relaxed);
            async move {
                if n == 0 {
                    Err(ProbeError::new(Outcome::Unreachable, "refused"))
                } else {
                    Ok(Pong([1; 20]))
                }
            }
        })
        .await
        .unwrap();
    assert_eq!(r.0, [1; 20]);
    let v = visits(&mut rx);
    assert_eq!(v.len(), 2);
    assert_eq!((v[0].outcome, v[1].outcome), (Outcome::Unreachable, Outcome::Ok));
    assert_eq!(v[1].remote_id, Some([1; 20]));
    assert_eq!(v[1].info_hash, Some(InfoHash([7; 20])));
    assert_eq!(engine.stats().ok(), 1);
}

#[tokio::test(start_paused = true)]
async fn concurrency_is_bounded() {
    let (rec, _rx) = Recorder::channel(1000);
    let engine = Engine::new(
        EngineConfig {
            concurrency: 3,
            per_ip_interval: Duration::ZERO,
            ..cfg()
        },
        rec,
    );
    let live = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for i in 0..20u8 {
        let (engine, live, peak) = (engine.clone(), live.clone(), peak.clone());
        tasks.push(tokio::spawn(async move {
            let target = Target::addr(ProbeKind::DhtPing, SocketAddr::from(([127, 0, 1, i], 1)));
            engine
                .probe(&target, || {
                    let (live, peak) = (live.clone(), peak.clone());
                    async move {
                        let now = live.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        live.fetch_sub(1, Ordering::SeqCst);
                        Ok::<_, ProbeError>(())
                    }
                })
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    assert_eq!(engine.stats().attempts(), 20);
    assert_eq!(engine.stats().in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn denied_targets_are_never_contacted_but_recorded() {
    let (rec, mut rx) = Recorder::channel(100);
    let engine = Engine::new(cfg(), rec).with_deny_list(DenyList::with(["127.66.0.0/16".parse().unwrap()]));
    let tries = AtomicU32::new(0);
    for a in ["127.66.0.1:6881", "224.0.0.1:6881"] {
        let target = Target::addr(ProbeKind::DhtPing, addr(a));
        let r: Result<(), _> = engine
            .probe(&target, || {
                tries.fetch_add(1, Ordering::Relaxed);
                async { Ok(()) }
            })
            .await;
        assert_eq!(r.unwrap_err().outcome, Outcome::Denied);
    }
    assert_eq!(tries.load(Ordering::Relaxed), 0);
    let v = visits(&mut rx);
    assert_eq!(v.len(), 2);
    assert!(v[0].error.as_deref().unwrap().contains("127.66.0.0/16"));
    assert_eq!((engine.stats().denied(), engine.stats().attempts()), (2, 0));
}
