//! [`Needs`]: which of an [`Entry`](super::Entry)'s costly parts a reader will look at.
//!
//! Owns: the list of entry fields that cost more than a borrow to fill (a clock read for the
//! latency and the time, the client's address formatted as text, a header lookup for the user
//! agent) and which `$context` variables read them. A phase that renders a few `$context`
//! values on every request (parameter mapping's `$context.requestId`) asks for an entry with
//! just what its values read; the access log asks for everything. Leaves out: building the
//! entry (`crate::exchange::context::with_entry`).

use super::{Field, Piece};

/// A set of an entry's costly parts; a part not in it reads as its zero or `-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Needs {
    /// `latency` and `time` (`$context.responseLatency`, `$context.requestTime`).
    pub clock: bool,
    /// `ip` (`$context.ip`).
    pub ip: bool,
    /// `user_agent` (`$context.userAgent`).
    pub user_agent: bool,
}

impl Needs {
    /// Every part: what the access log and any reader of arbitrary variables asks for.
    pub const ALL: Needs = Needs {
        clock: true,
        ip: true,
        user_agent: true,
    };

    /// No costly part.
    pub const NONE: Needs = Needs {
        clock: false,
        ip: false,
        user_agent: false,
    };

    /// What rendering `p` reads.
    pub fn of(p: &Piece) -> Needs {
        match p {
            Piece::Var(Field::RequestTime | Field::ResponseLatency) => Needs {
                clock: true,
                ..Needs::NONE
            },
            Piece::Var(Field::Ip) => Needs {
                ip: true,
                ..Needs::NONE
            },
            Piece::Var(Field::UserAgent) => Needs {
                user_agent: true,
                ..Needs::NONE
            },
            Piece::Text(_) | Piece::Var(_) | Piece::Authorizer(_) => Needs::NONE,
        }
    }

    /// Both sets.
    pub fn and(self, o: Needs) -> Needs {
        Needs {
            clock: self.clock || o.clock,
            ip: self.ip || o.ip,
            user_agent: self.user_agent || o.user_agent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_costly_variables_need_anything() {
        let of = |name: &str| Needs::of(&super::super::parse_var(name).unwrap().0);
        assert_eq!(of("requestId"), Needs::NONE);
        assert_eq!(of("authorizer.claims.sub"), Needs::NONE);
        assert!(of("responseLatency").clock && of("requestTime").clock);
        assert_eq!(
            of("ip").and(of("userAgent")),
            Needs {
                clock: false,
                ..Needs::ALL
            }
        );
    }
}
