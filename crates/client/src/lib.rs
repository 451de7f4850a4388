//! The client side of the navarch API, shared by every daemon and navctl.
//!
//! Owns the connection to the api-server ([`Client`], typed [`Api<K>`]), and the controller runtime built
//! on it, modelled on kube-runtime: the watcher (list, then watch from the last resourceVersion; relist
//! when expired; jittered backoff), the reflector store, and the controller runner.

pub mod client;
pub mod error;

pub use client::{
    Api, Client, DeleteParams, Deleted, ListParams, ObjectList, WatchEvent, WatchParams, WatchStream,
};
pub use error::{Error, Result};
