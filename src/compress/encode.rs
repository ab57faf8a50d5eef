//! Response compression: the streaming encoder for relayed bodies and the one-shot one for
//! bodies held in memory.
