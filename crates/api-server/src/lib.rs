//! api-server (being written).
