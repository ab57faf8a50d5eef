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
    let c = TokenCache::new(4, usize::MAX);
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
    let c = TokenCache::new(2, usize::MAX);
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
    let c = TokenCache::new(0, usize::MAX);
    c.insert(b"t", principal("x"), u64::MAX);
    assert!(c.get(b"t", 0).is_none());
    assert!(c.is_empty());
}

#[test]
fn stale_slots_of_expired_entries_stay_bounded_and_never_evict_live_ones() {
    let cap = 8;
    let c = TokenCache::new(cap, usize::MAX);
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

#[test]
fn the_oldest_entries_are_evicted_against_the_byte_budget() {
    // room for exactly three 100-byte tokens, whatever the entry bound
    let c = TokenCache::new(1_000, 3 * entry_cost(100));
    let tokens: Vec<Vec<u8>> = (0..5u8).map(|i| vec![b'a' + i; 100]).collect();
    for (i, t) in tokens.iter().take(3).enumerate() {
        c.insert(t, principal(&i.to_string()), 1_000);
    }
    assert_eq!((c.len(), c.bytes()), (3, 3 * entry_cost(100)));
    c.insert(&tokens[3], principal("3"), 1_000);
    assert_eq!(c.len(), 3);
    assert!(c.get(&tokens[0], 0).is_none(), "the oldest went first");
    assert_eq!(id(c.get(&tokens[1], 0)), Some("1".into()));
    // a token worth two slots evicts the two oldest
    let big = vec![b'z'; 100 + entry_cost(100) / TOKEN_BYTES_FACTOR];
    assert!(entry_cost(big.len()) <= 2 * entry_cost(100));
    c.insert(&big, principal("big"), 1_000);
    assert!(c.get(&tokens[1], 0).is_none());
    assert!(c.get(&tokens[2], 0).is_none());
    assert_eq!(id(c.get(&tokens[3], 0)), Some("3".into()));
    assert_eq!(id(c.get(&big, 0)), Some("big".into()));
    assert!(c.bytes() <= 3 * entry_cost(100));
    // expiry gives its bytes back; a token over the whole budget is not kept
    assert!(c.get(&big, 1_000).is_none());
    assert_eq!(c.bytes(), entry_cost(100));
    let huge = vec![b'h'; 3 * entry_cost(100)];
    c.insert(&huge, principal("huge"), 1_000);
    assert!(c.get(&huge, 0).is_none());
    assert_eq!(c.len(), 1);
}
