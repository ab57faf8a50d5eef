use super::*;
use std::future::Future;
use std::time::Duration;

fn k(i: u8) -> Key {
    key(&[i.to_string()])
}

#[test]
fn the_cache_is_bounded_and_values_expire() {
    let now = Instant::now();
    let later = now + Duration::from_secs(60);
    let mut c = Cache::new(3, usize::MAX);
    for i in 0..10u8 {
        c.insert(k(i), later, i, 1, now);
        assert!(c.len() <= 3 && c.order.len() <= 3, "{}", c.len());
    }
    // the oldest went first
    assert_eq!(c.get(&k(0), now), None);
    assert_eq!(c.get(&k(9), now), Some(9));
    // past its expiry a value is gone
    assert_eq!(c.get(&k(9), later), None);
    // a key inserted again keeps one entry, with the new value; order stays within cap
    for _ in 0..10 {
        c.insert(k(8), later, 80, 1, now);
        assert!(c.order.len() <= 3);
    }
    assert_eq!(c.get(&k(8), now), Some(80));
    assert!(c.len() <= 3);
}

#[test]
fn the_cache_is_bounded_in_bytes() {
    let now = Instant::now();
    let later = now + Duration::from_secs(60);
    let per = 1000 + CACHE_ENTRY_OVERHEAD;
    let mut c = Cache::new(1000, per * 4);
    for i in 0..50u8 {
        c.insert(k(i), later, i, 1000, now);
        assert!(
            c.bytes <= per * 4 && c.len() <= 4,
            "{} {}",
            c.bytes,
            c.len()
        );
    }
    assert_eq!(c.get(&k(49), now), Some(49));
    assert_eq!(c.get(&k(45), now), None);
    // heavier than the whole budget: not kept, nothing else evicted for it
    c.insert(k(200), later, 200, per * 5, now);
    assert_eq!(c.get(&k(200), now), None);
    assert_eq!(c.get(&k(49), now), Some(49));
    // re-inserting a key replaces its weight, not adds to it
    c.insert(k(49), later, 49, 1000, now);
    assert!(c.bytes <= per * 4);
}

#[test]
fn keys_are_32_byte_digests_that_do_not_collide() {
    let a = key(&["ab".into(), "c".into()]);
    let b = key(&["a".into(), "bc".into()]);
    let c = key(&["abc".into()]);
    assert!(a != b && b != c && a != c);
    // 32 KiB of identity is still a 32-byte key
    assert_eq!(key(&["x".repeat(32 * 1024)]).len(), 32);
}

#[test]
fn the_shared_level_answers_claims_and_withdraws() {
    let s = Arc::new(SharedAnswers::new(10, 1 << 20));
    let now = Instant::now();
    let deadline = now + Duration::from_secs(1);
    let Shared::Claimed(lead) = s.lookup(&k(1), now, deadline, None) else {
        panic!("first lookup claims");
    };
    // another worker sees the call in flight until its deadline and the grace after it
    let Shared::Calling { flight } = s.lookup(&k(1), now, deadline, None) else {
        panic!("in flight");
    };
    let at_grace = deadline + SHARED_FAILURE_GRACE - Duration::from_millis(1);
    assert!(
        matches!(s.lookup(&k(1), at_grace, deadline, Some(flight)), Shared::Calling { flight: f } if f == flight)
    );
    // past them the claim is taken over
    let late = deadline + SHARED_FAILURE_GRACE + Duration::from_millis(1);
    let Shared::Claimed(second) = s.lookup(&k(1), late, late + Duration::from_secs(1), None) else {
        panic!("an expired claim is taken over");
    };
    // the first lead's drop does not withdraw the second claim
    drop(lead);
    assert!(matches!(
        s.lookup(&k(1), now, deadline, None),
        Shared::Calling { .. }
    ));
    second.finish(Arc::from(&b"{}"[..]), now + Duration::from_secs(60));
    drop(second);
    assert!(matches!(s.lookup(&k(1), now, deadline, None), Shared::Answer(a, _) if &*a == b"{}"));
    // a claim dropped without an end is withdrawn: the next lookup claims
    let Shared::Claimed(gone) = s.lookup(&k(2), now, deadline, None) else {
        panic!("claims");
    };
    drop(gone);
    assert!(matches!(
        s.lookup(&k(2), now, deadline, None),
        Shared::Claimed(_)
    ));
}

#[test]
fn a_failed_call_ends_only_the_flight_its_pollers_polled() {
    let s = Arc::new(SharedAnswers::new(10, 1 << 20));
    let now = Instant::now();
    let deadline = now + Duration::from_secs(1);
    let Shared::Claimed(lead) = s.lookup(&k(1), now, deadline, None) else {
        panic!("claims");
    };
    let Shared::Calling { flight } = s.lookup(&k(1), now, deadline, None) else {
        panic!("in flight");
    };
    let forwarded = MockResponse {
        status: 401,
        head: bytes::Bytes::from_static(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 4\r\n"),
        body: bytes::Bytes::from_static(b"nope"),
        present: crate::http::Present::default(),
    };
    lead.fail(SharedFailure {
        refusal: Refusal::Unauthorized,
        why: "authorizer answered 401".into(),
        forwarded: Some(forwarded),
    });
    // the poller of that flight gets its end, refusal, words and response, until the grace
    // after the call's deadline
    for at in [
        now,
        deadline + SHARED_FAILURE_GRACE - Duration::from_millis(1),
    ] {
        let Shared::Failed(f) = s.lookup(&k(1), at, at + Duration::from_secs(1), Some(flight))
        else {
            panic!("the polled flight's end");
        };
        assert_eq!(f.refusal, Refusal::Unauthorized);
        assert_eq!(&*f.why, "authorizer answered 401");
        assert_eq!(
            f.forwarded.map(|r| r.body),
            Some(bytes::Bytes::from_static(b"nope"))
        );
    }
    // kept no longer; and a lookup that polled nothing (a later request) calls again
    let later = deadline + SHARED_FAILURE_GRACE;
    let Shared::Claimed(again) =
        s.lookup(&k(1), later, later + Duration::from_secs(1), Some(flight))
    else {
        panic!("claims after the grace");
    };
    drop(again);
    let Shared::Claimed(fresh) = s.lookup(&k(1), now, deadline, None) else {
        panic!("a new lookup claims");
    };
    // and a poller of an older flight does not take a newer flight's end for its own
    let Shared::Calling { flight: newer } = s.lookup(&k(1), now, deadline, None) else {
        panic!("in flight");
    };
    assert_ne!(newer, flight);
    fresh.fail(SharedFailure {
        refusal: Refusal::Failed,
        why: "timed out".into(),
        forwarded: None,
    });
    assert!(
        matches!(s.lookup(&k(1), now, deadline, Some(newer)), Shared::Failed(f) if f.refusal == Refusal::Failed)
    );
    assert!(matches!(
        s.lookup(&k(1), now, deadline, Some(flight)),
        Shared::Claimed(_)
    ));
}

/// Waiters get the leader's result; a dropped leader abandons the flight; both remove it
/// from the in-flight map; a waiter polled many times holds one slot. Run on both drivers.
#[test]
fn waiters_get_the_leaders_end() {
    fn run<D: monoio::Driver>(mut rt: monoio::Runtime<D>) {
        rt.block_on(async {
            let flights: Flights<u32> = Rc::new(RefCell::new(AHashMap::new()));
            let lead = Lead::start(&flights, k(1));
            let f = flying(&flights, &k(1)).expect("in flight");
            let waiter = monoio::spawn(async move { wait(&f).await });
            monoio::time::sleep(Duration::from_millis(5)).await;
            lead.finish(7);
            assert!(matches!(waiter.await, FlightEnd::Done(7)));
            assert!(flights.borrow().is_empty());

            let lead = Lead::start(&flights, k(2));
            let f = flying(&flights, &k(2)).expect("in flight");
            let waiter = monoio::spawn(async move { wait(&f).await });
            monoio::time::sleep(Duration::from_millis(5)).await;
            drop(lead);
            assert!(matches!(waiter.await, FlightEnd::Abandoned));
            assert!(flights.borrow().is_empty());

            // one waiter polled again and again keeps one slot
            let lead = Lead::start(&flights, k(3));
            let f = flying(&flights, &k(3)).expect("in flight");
            let mut fut = std::pin::pin!(wait(&f));
            let noop = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(noop);
            for _ in 0..100 {
                assert!(fut.as_mut().poll(&mut cx).is_pending());
            }
            assert_eq!(f.waiters.borrow().len(), 1);
            lead.finish(9);
            assert!(matches!(
                fut.as_mut().poll(&mut cx),
                Poll::Ready(FlightEnd::Done(9))
            ));
        });
    }
    let legacy = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .expect("epoll runtime");
    run(legacy);
    let uring = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
        .expect("io_uring runtime");
    run(uring);
}
