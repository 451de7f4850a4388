//! Test environment (being written).
