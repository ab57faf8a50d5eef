//! Read buffers per worker: lent to a connection (client or origin) while it is busy, so an
//! idle keep-alive connection holds no read buffer at all.
//!
//! Owns: [`BufPool`], a per-core free list (`RefCell`, never shared across cores). Leaves out:
//! when a buffer is taken and given back (the client session's connection loop, the outbound
//! client's exchange). It lives with the transport so that both the proxy and the outbound
//! client use it without one importing the other.

use std::cell::RefCell;

use bytes::BytesMut;

/// Read buffers kept for reuse per worker; beyond this, returned buffers are freed.
pub const BUFFER_POOL_MAX: usize = 1024;

/// Buffers lent to connections only while they are busy, so an idle keep-alive connection holds
/// no read buffer at all.
pub struct BufPool {
    size: usize,
    free: RefCell<Vec<BytesMut>>,
}

impl BufPool {
    pub fn new(size: usize) -> Self {
        BufPool {
            size,
            free: RefCell::new(Vec::new()),
        }
    }

    /// The configured buffer size.
    pub fn size(&self) -> usize {
        self.size
    }

    /// An empty buffer with at least `size` capacity.
    pub fn take(&self) -> BytesMut {
        match self.free.borrow_mut().pop() {
            Some(b) => b,
            None => BytesMut::with_capacity(self.size),
        }
    }

    /// Buffers free for reuse (tests: that nothing lent is still held).
    #[cfg(test)]
    pub(crate) fn free_len(&self) -> usize {
        self.free.borrow().len()
    }

    /// Returns an empty buffer for reuse. A buffer whose allocation is still shared (a frozen
    /// head is alive) or was grown far beyond the configured size is dropped instead.
    pub fn give(&self, mut buf: BytesMut) {
        buf.clear();
        if buf.capacity() > self.size * 4 {
            return;
        }
        // `reserve` on an empty, uniquely owned buffer reclaims its whole allocation in place.
        buf.reserve(self.size);
        let mut free = self.free.borrow_mut();
        if free.len() < BUFFER_POOL_MAX {
            free.push(buf);
        }
    }
}
