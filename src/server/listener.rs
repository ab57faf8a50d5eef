//! Listening sockets: one SO_REUSEPORT socket per worker and address, made before workers start.
//!
//! Owns: creating, binding and listening with the options the data plane needs, so bind errors
//! surface synchronously at startup (and a `:0` port resolves once, with every worker's socket on
//! the same port). Leaves out: accepting (each worker hands its sockets to its own runtime). The
//! kernel spreads new connections across the worker sockets of an address by the 4-tuple hash.
//!
//! SO_REUSEPORT lets any socket of the same user join a group, so a second tollgate (or anything
//! else) started on the same address would silently share its traffic. Before a group is made
//! for an address (at startup, or for an address a reload adds), [`bind_reuseport`] probes it
//! with a socket bound *without* SO_REUSEPORT: that bind fails with `EADDRINUSE` when anyone
//! listens there, and the group is refused ("address in use by another process"). The probe is
//! closed before the group binds. Addresses a reload keeps are never probed: the workers keep
//! their sockets. Port 0 is not probed (the kernel picks a port nobody uses).
//!
//! The probe only sees sockets that already *listen*: two tollgates starting together could
//! both probe before either listens, and then both join one group. So the probe and the binds
//! after it run under a lock per port, shared by every tollgate of the network namespace (an
//! abstract Unix socket named after the port, [`BindLock`]): the second one waits until the
//! first listens, then its probe sees it and it refuses. A program that is not tollgate and
//! binds with SO_REUSEPORT as the same user in that window is not covered.
//!
//! The probe cannot tell who listens: when a reload adds `0.0.0.0:P` to a server listening on
//! `127.0.0.1:P` (or the reverse), the server's own sockets make it fail. A server keeps the
//! inodes of its listening sockets in [`Owned`]; when the probe fails and the server has sockets
//! on that port, the kernel's table of listening TCP sockets (`/proc/net/tcp`, `tcp6`) decides:
//! the address is refused only if a listener overlapping it there is not one of the server's.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::UnixDatagram;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What the error for an address another process listens on says.
pub const IN_USE_BY_ANOTHER: &str = "address in use by another process";

/// Creates `count` listening sockets on `addr`, all with SO_REUSEPORT on the same port, after
/// checking that nobody listens on `addr` yet (see the module docs).
pub fn bind_reuseport(
    addr: SocketAddr,
    count: usize,
    backlog: u32,
) -> io::Result<Vec<TcpListener>> {
    bind_group(addr, count, backlog, None)
}

/// [`bind_reuseport`] for a server whose listening sockets are `own`: a listener of its own on
/// the port does not make the address "in use by another process", and the new sockets are
/// added to `own` (under `addr`, the address as the config gives it).
pub fn bind_reuseport_beside(
    addr: SocketAddr,
    count: usize,
    backlog: u32,
    own: &Owned,
) -> io::Result<Vec<TcpListener>> {
    let group = bind_group(addr, count, backlog, Some(own))?;
    own.add(addr, &group)?;
    Ok(group)
}

fn bind_group(
    addr: SocketAddr,
    count: usize,
    backlog: u32,
    own: Option<&Owned>,
) -> io::Result<Vec<TcpListener>> {
    // held until every socket of the group listens (dropped on return)
    let _lock = if addr.port() == 0 {
        None
    } else {
        Some(BindLock::take(addr.port(), BIND_LOCK_WAIT)?)
    };
    if let Err(e) = probe_free(addr) {
        let mine = own.map(|o| o.on_port(addr.port())).unwrap_or_default();
        // only the server's own sockets listening there: not another process
        if e.kind() != io::ErrorKind::AddrInUse || mine.is_empty() || foreign_listener(addr, &mine)?
        {
            return Err(e);
        }
    }
    let mut out = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count.max(1) {
        let l = bind_one(addr, backlog)?;
        addr = l.local_addr()?; // the first socket fixes the port when `addr` had port 0
        out.push(l);
    }
    Ok(out)
}

/// The listening sockets of one server, by configured address and socket inode (see the
/// module docs). Touched by the thread starting the server and by reloads (serialised), never
/// by workers.
#[derive(Debug, Default)]
pub struct Owned(Mutex<Vec<(SocketAddr, u64)>>);

impl Owned {
    fn lock(&self) -> MutexGuard<'_, Vec<(SocketAddr, u64)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, configured: SocketAddr, group: &[TcpListener]) -> io::Result<()> {
        let mut v = self.lock();
        for l in group {
            v.push((configured, inode(l.as_raw_fd())?));
        }
        Ok(())
    }

    /// Forgets the sockets of addresses not in `listen` (a reload removed them, or a reload
    /// that bound them was rejected).
    pub fn retain(&self, listen: &[SocketAddr]) {
        self.lock().retain(|(a, _)| listen.contains(a));
    }

    /// The inodes of the server's sockets on `port` (a configured port 0 counts: it is only
    /// known once bound, and an inode check is exact anyway).
    fn on_port(&self, port: u16) -> Vec<u64> {
        let v = self.lock();
        v.iter()
            .filter(|(a, _)| a.port() == port || a.port() == 0)
            .map(|&(_, i)| i)
            .collect()
    }
}

/// The inode of socket `fd` (what `/proc/net/tcp` lists it under).
fn inode(fd: i32) -> io::Result<u64> {
    // SAFETY: `stat` is plain data that fstat(2) fills in; `fd` is a descriptor we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above; the pointer is to a live, writable `stat`.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.st_ino)
}

/// Whether a TCP socket that is not one of `mine` listens on an address overlapping `addr`
/// (same port; the same IP, or either one the wildcard), per the kernel's socket tables.
fn foreign_listener(addr: SocketAddr, mine: &[u64]) -> io::Result<bool> {
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound && v6 => continue, // IPv6 disabled
            Err(e) => return Err(e),
        };
        for line in text.lines().skip(1) {
            let Some(row) = ListenRow::parse(line, v6) else {
                continue;
            };
            if row.addr.port() == addr.port()
                && overlaps(addr, row.addr)
                && !mine.contains(&row.inode)
            {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// A listening socket's line of `/proc/net/tcp` or `tcp6`.
struct ListenRow {
    addr: SocketAddr,
    inode: u64,
}

impl ListenRow {
    /// `sl local_address rem_address st ... inode ...`; `None` for any other state (or a line
    /// that does not read).
    fn parse(line: &str, v6: bool) -> Option<ListenRow> {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (local, state, inode) = (f.get(1)?, f.get(3)?, f.get(9)?);
        if *state != "0A" {
            return None; // TCP_LISTEN
        }
        let (ip, port) = local.split_once(':')?;
        let port = u16::from_str_radix(port, 16).ok()?;
        // the address is printed as 32-bit words in the host's byte order
        let mut bytes = Vec::with_capacity(16);
        for i in (0..ip.len()).step_by(8) {
            let word = u32::from_str_radix(ip.get(i..i + 8)?, 16).ok()?;
            bytes.extend_from_slice(&word.to_ne_bytes());
        }
        let ip: std::net::IpAddr = match (v6, bytes.len()) {
            (false, 4) => <[u8; 4]>::try_from(bytes.as_slice()).ok()?.into(),
            (true, 16) => <[u8; 16]>::try_from(bytes.as_slice()).ok()?.into(),
            _ => return None,
        };
        Some(ListenRow {
            addr: SocketAddr::new(ip, port),
            inode: inode.parse().ok()?,
        })
    }
}

/// Whether a listener on `other` can conflict with a bind of `addr` (same port assumed). An IPv6
/// wildcard or v4-mapped listener may be dual-stack, so it counts against an IPv4 address; an
/// IPv4 listener never counts against an IPv6 address (the server's IPv6 sockets are V6ONLY).
fn overlaps(addr: SocketAddr, other: SocketAddr) -> bool {
    match (addr.ip(), other.ip()) {
        (a, o) if a.is_ipv4() == o.is_ipv4() => a == o || a.is_unspecified() || o.is_unspecified(),
        (std::net::IpAddr::V4(a), std::net::IpAddr::V6(o)) => match o.to_ipv4_mapped() {
            Some(m) => m == a || m.is_unspecified() || a.is_unspecified(),
            None => o.is_unspecified(),
        },
        _ => false,
    }
}

/// How long [`bind_reuseport`] waits for another tollgate binding the same port to finish (it
/// holds the lock for the few system calls of a probe and a group's binds).
const BIND_LOCK_WAIT: Duration = Duration::from_secs(2);

/// How often a bind waiting for the lock of its port tries again.
const BIND_LOCK_RETRY: Duration = Duration::from_millis(5);

/// The lock of one port while a tollgate probes and binds it: an abstract Unix socket named
/// after the port, which only one socket of the network namespace can be bound to. The kernel
/// releases it when the socket closes (on drop, or when the process dies: never stale).
struct BindLock {
    _socket: UnixDatagram,
}

impl BindLock {
    /// Takes the lock of `port`, waiting up to `wait` for another process holding it.
    fn take(port: u16, wait: Duration) -> io::Result<BindLock> {
        let name = format!("tollgate/listen-port/{port}");
        let at = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        let deadline = Instant::now() + wait;
        loop {
            match UnixDatagram::bind_addr(&at) {
                Ok(s) => return Ok(BindLock { _socket: s }),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                    std::thread::sleep(BIND_LOCK_RETRY);
                }
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!(
                            "another process kept binding port {port} for {} ms",
                            wait.as_millis()
                        ),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Fails with [`IN_USE_BY_ANOTHER`] when a socket listens on `addr` (any process, this one
/// included): binds a probe socket without SO_REUSEPORT and closes it at once. SO_REUSEADDR is
/// set so connections of an earlier run still in TIME_WAIT do not count as a listener.
fn probe_free(addr: SocketAddr) -> io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    match socket_bound(addr, false) {
        Ok(_probe) => Ok(()), // dropped (closed) here, before the group binds
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            Err(io::Error::new(io::ErrorKind::AddrInUse, IN_USE_BY_ANOTHER))
        }
        Err(e) => Err(e),
    }
}

fn bind_one(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let owned = socket_bound(addr, true)?;
    let fd = owned.as_raw_fd();
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    // SAFETY: listen(2) on a bound socket we own.
    if unsafe { libc::listen(fd, backlog) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpListener::from(owned))
}

/// A TCP socket bound to `addr` (SO_REUSEADDR always, SO_REUSEPORT when `reuseport`).
fn socket_bound(addr: SocketAddr, reuseport: bool) -> io::Result<OwnedFd> {
    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh, valid descriptor that nothing else owns; OwnedFd closes it on
    // every error path below.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if reuseport {
        set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    }
    if domain == libc::AF_INET6 {
        set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
    }
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` is a properly initialised sockaddr of length `len` for this family.
    let rc = unsafe { libc::bind(fd, std::ptr::addr_of!(storage).cast(), len) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(owned)
}

/// setsockopt with an `int` value.
pub fn set_int(fd: i32, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: the option value points at a live i32 whose size is passed along.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            std::ptr::addr_of!(value).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr type.
            let sin = unsafe { &mut *std::ptr::addr_of_mut!(storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(a.ip().octets()),
            };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 =
                unsafe { &mut *std::ptr::addr_of_mut!(storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Pins the calling thread to `core` (best effort: an error is returned, not fatal).
pub fn pin_current_thread(core: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET only write inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(core % libc::CPU_SETSIZE as usize, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_resolves_once_for_all_workers() {
        let ls = bind_reuseport("127.0.0.1:0".parse().unwrap(), 3, 128).unwrap();
        let port = ls[0].local_addr().unwrap().port();
        assert_ne!(port, 0);
        assert!(ls.iter().all(|l| l.local_addr().unwrap().port() == port));
    }

    #[test]
    fn taken_port_without_reuseport_fails() {
        let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = plain.local_addr().unwrap();
        assert!(bind_reuseport(addr, 1, 128).is_err());
    }

    #[test]
    fn another_reuseport_group_on_the_address_is_refused() {
        // another process's tollgate: a SO_REUSEPORT group of the same user on a fixed port
        let other = bind_reuseport("127.0.0.1:0".parse().unwrap(), 1, 128).unwrap();
        let addr = other[0].local_addr().unwrap();
        let e = bind_reuseport(addr, 2, 128).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        assert!(e.to_string().contains(IN_USE_BY_ANOTHER), "{e}");
        drop(other);
        // free again: the group binds, its own sockets sharing the port
        assert_eq!(bind_reuseport(addr, 2, 128).unwrap().len(), 2);
    }

    #[test]
    fn a_tollgate_binding_the_same_port_at_the_same_time_is_waited_for_then_refused() {
        // the port of a socket just closed: free, nobody listens
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], port));
        // another tollgate, between its probe (which found the port free) and its listen
        let (taken, wait_taken) = std::sync::mpsc::channel();
        let other = std::thread::spawn(move || {
            let lock = BindLock::take(port, BIND_LOCK_WAIT).unwrap();
            taken.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            let group = bind_one(addr, 16).unwrap();
            drop(lock);
            group
        });
        wait_taken.recv().unwrap();
        // without the lock this probe finds nothing listening yet and joins the other's group
        let e = bind_reuseport(addr, 2, 16).unwrap_err();
        assert!(e.to_string().contains(IN_USE_BY_ANOTHER), "{e}");
        let group = other.join().unwrap();
        assert_eq!(group.local_addr().unwrap(), addr);
    }

    #[test]
    fn the_servers_own_sockets_on_the_port_are_not_another_process() {
        let own = Owned::default();
        let narrow = bind_reuseport_beside("127.0.0.1:0".parse().unwrap(), 2, 16, &own).unwrap();
        let port = narrow[0].local_addr().unwrap().port();
        let wide = SocketAddr::from(([0, 0, 0, 0], port));
        // without knowing its own sockets, the server refuses itself
        let e = bind_reuseport(wide, 1, 16).unwrap_err();
        assert!(e.to_string().contains(IN_USE_BY_ANOTHER), "{e}");
        let group = bind_reuseport_beside(wide, 2, 16, &own).expect("only its own sockets");
        assert_eq!(group.len(), 2);
        drop(group);
        own.retain(&["127.0.0.1:0".parse().unwrap()]);
        // another process's socket on an overlapping address is still refused (this one has
        // SO_REUSEPORT, as another tollgate's would, and is not in `own`)
        let other = bind_one(SocketAddr::from(([127, 0, 0, 1], port)), 16).unwrap();
        let e = bind_reuseport_beside(wide, 1, 16, &own).unwrap_err();
        assert!(e.to_string().contains(IN_USE_BY_ANOTHER), "{e}");
        drop(other);
        // the server on the wildcard adds one IP of the port; another process listening on
        // another IP of that port does not overlap it and is no reason to refuse
        drop(narrow);
        own.retain(&[]);
        let wide_group = bind_reuseport_beside(wide, 1, 16, &own).unwrap();
        let aside = bind_one(SocketAddr::from(([127, 0, 0, 2], port)), 16).unwrap();
        let one = SocketAddr::from(([127, 0, 0, 1], port));
        assert!(
            bind_reuseport(one, 1, 16).is_err(),
            "the probe alone refuses"
        );
        assert!(bind_reuseport_beside(one, 1, 16, &own).is_ok());
        drop((aside, wide_group));
    }

    #[test]
    fn ipv6_wildcards_against_ipv4_addresses() {
        // a dual-stack listener on [::]:P (the system default for a plain IPv6 socket) takes
        // 0.0.0.0:P too: refused
        let Ok(dual) = std::net::TcpListener::bind("[::]:0") else {
            return; // no IPv6 here
        };
        let port = dual.local_addr().unwrap().port();
        let v4 = SocketAddr::from(([0, 0, 0, 0], port));
        let dual_stack = socket_bound(SocketAddr::from(([0, 0, 0, 0], port)), false).is_err();
        if dual_stack {
            let e = bind_reuseport(v4, 1, 16).unwrap_err();
            assert!(e.to_string().contains(IN_USE_BY_ANOTHER), "{e}");
        }
        drop(dual);
        // tollgate's IPv6 sockets are V6ONLY: [::]:P and another process's 0.0.0.0:P coexist
        let other = std::net::TcpListener::bind(v4).unwrap();
        let v6: SocketAddr = format!("[::]:{port}").parse().unwrap();
        let group = bind_reuseport(v6, 2, 16).expect("IPv6 only: no overlap with IPv4");
        // and the IPv4 wildcard of the port is still refused (the other process has it)
        assert!(bind_reuseport(v4, 1, 16).is_err());
        drop((group, other));
    }

    #[test]
    fn proc_net_tcp_lines_read_as_listening_addresses() {
        let v4 = ListenRow::parse(
            "   1: 0100007F:B47F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1787479 1 0 100 0 0 10 0",
            false,
        )
        .unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(v4.addr, "127.0.0.1:46207".parse::<SocketAddr>().unwrap());
        }
        assert_eq!(v4.inode, 1_787_479);
        let established = "   2: 0100007F:B47F 0100007F:0050 01 00000000:00000000 00:00000000 00000000     0        0 17 1 0 100 0 0 10 0";
        assert!(ListenRow::parse(established, false).is_none());
        let v6 = ListenRow::parse(
            "   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 42 1 0 100 0 0 10 0",
            true,
        )
        .unwrap();
        assert_eq!(v6.addr, "[::]:8080".parse::<SocketAddr>().unwrap());
        for bad in [
            "",
            "  sl  local_address rem_address   st",
            "0: zz:1 0:0 0A a b c d e f",
        ] {
            assert!(ListenRow::parse(bad, false).is_none(), "{bad}");
        }
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(overlaps(a("0.0.0.0:1"), a("127.0.0.1:1")));
        assert!(overlaps(a("127.0.0.1:1"), a("[::]:1")));
        assert!(!overlaps(a("127.0.0.1:1"), a("127.0.0.2:1")));
        assert!(!overlaps(a("[::1]:1"), a("0.0.0.0:1")));
    }

    #[test]
    fn a_lock_held_too_long_refuses_the_bind_instead_of_waiting_forever() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let _held = BindLock::take(port, BIND_LOCK_WAIT).unwrap();
        let e = BindLock::take(port, Duration::from_millis(50))
            .err()
            .unwrap();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        assert!(e.to_string().contains(&format!("port {port}")), "{e}");
        drop(_held);
        assert!(
            BindLock::take(port, Duration::ZERO).is_ok(),
            "released on drop"
        );
    }
}
