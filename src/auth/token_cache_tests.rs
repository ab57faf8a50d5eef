//! `TokenCache`: hits, expiry, FIFO eviction, capacity 0, stale slots.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::auth::Identity;

fn principal(id: &str) -> Rc<Principal> {
    Rc::new(Principal {
        authorizer: 0,
        id: id.into(),
        identity: Identity::Jwt {
            claims: Default::default(),
            scopes: Vec::new(),
        },
        throttle: None,
    })
}

fn id(p: Option<Rc<Principal>>) -> Option<String> {
    p.map(|p| p.id.to_string())
}

#[test]
fn a_hit_returns_the_same_principal_until_expiry() {
    let c = TokenCache::new(4);
    let p = principal("alice");
    c.insert(b"tok-a", Rc::clone(&p), 1_000);
    let hit = c.get(b"tok-a", 999).unwrap();
    assert!(Rc::ptr_eq(&hit, &p));
    assert!(c.get(b"tok-b", 0).is_none());
    // byte for byte: a prefix or a longer token is another token
    assert!(c.get(b"tok-", 0).is_none());
    assert!(c.get(b"tok-aa", 0).is_none());
    // at `expires` the entry is dead and removed
    assert!(c.get(b"tok-a", 1_000).is_none());
    assert_eq!(c.len(), 0);
    assert!(c.get(b"tok-a", 10).is_none());
}

#[test]
fn the_oldest_entry_is_evicted_at_capacity() {
    let c = TokenCache::new(2);
    c.insert(b"1", principal("one"), 100);
    c.insert(b"2", principal("two"), 100);
    // a hit does not refresh age (FIFO)
    assert!(c.get(b"1", 0).is_some());
    c.insert(b"3", principal("three"), 100);
    assert_eq!(c.len(), 2);
    assert!(c.get(b"1", 0).is_none());
    assert_eq!(id(c.get(b"2", 0)).as_deref(), Some("two"));
    assert_eq!(id(c.get(b"3", 0)).as_deref(), Some("three"));
    // replacing a kept token keeps its place and takes the new principal and expiry
    c.insert(b"2", principal("two'"), 50);
    assert_eq!(c.len(), 2);
    assert_eq!(id(c.get(b"2", 0)).as_deref(), Some("two'"));
    assert!(c.get(b"2", 50).is_none());
    c.insert(b"4", principal("four"), 100);
    c.insert(b"5", principal("five"), 100);
    assert!(c.get(b"3", 0).is_none());
    assert_eq!(id(c.get(b"4", 0)).as_deref(), Some("four"));
    assert_eq!(id(c.get(b"5", 0)).as_deref(), Some("five"));
}

#[test]
fn capacity_zero_keeps_nothing() {
    let c = TokenCache::new(0);
    c.insert(b"t", principal("x"), u64::MAX);
    assert!(c.get(b"t", 0).is_none());
    assert!(c.is_empty());
}

#[test]
fn stale_slots_of_expired_entries_stay_bounded_and_never_evict_live_ones() {
    let cap = 8;
    let c = TokenCache::new(cap);
    for round in 0..50u64 {
        // one long-lived token inserted first, then short-lived ones that expire
        if round == 0 {
            c.insert(b"keep", principal("keep"), u64::MAX);
        }
        let tok = format!("t{round}");
        c.insert(tok.as_bytes(), principal(&tok), round + 1);
        assert!(
            c.get(tok.as_bytes(), round + 1).is_none(),
            "expired at once"
        );
        assert!(c.inner.borrow().order.len() <= 2 * cap);
    }
    // the stale slots were skipped, not counted: "keep" is still there
    assert_eq!(id(c.get(b"keep", 1_000)).as_deref(), Some("keep"));
    // filling up evicts "keep" first (the oldest), then nothing else wrongly
    for i in 0..cap {
        c.insert(format!("f{i}").as_bytes(), principal("f"), u64::MAX);
    }
    assert!(c.get(b"keep", 0).is_none());
    assert_eq!(c.len(), cap);
    for i in 0..cap {
        assert!(c.get(format!("f{i}").as_bytes(), 0).is_some(), "f{i}");
    }
}
