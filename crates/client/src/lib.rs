//! Typed client and controller runtime (being written).
