//! The client side of the navarch API, shared by every daemon and navctl.
//!
//! Owns the connection to the api-server ([`Client`], typed [`Api<K>`]), and the controller runtime built
//! on it, modelled on kube-runtime: the watcher (list, then watch from the last resourceVersion; relist
//! when expired; jittered backoff), the reflector store, the shared reflector (one watch → one store →
//! any number of subscribers), and the controller runner; [`bootstrap`]: a component's first
//! credentials from a join token, through a CertificateSigningRequest.

#![forbid(unsafe_code)]

pub mod bootstrap;
pub mod client;
pub mod connection;
pub mod controller;
pub mod error;
pub mod events;
pub mod leader;
pub mod shared;
pub mod store;
pub mod watcher;

pub use client::{
    Api, ByteStream, Client, DeleteParams, Deleted, Impersonation, ListParams, ObjectList, PodBinding,
    Review, WatchEvent, WatchParams, WatchStream,
};
pub use connection::{Connection, Token, TokenFile};
pub use controller::{Action, Controller};
pub use error::{Error, Result};
pub use events::{EventRecorder, object_ref};
pub use leader::{LeaderElector, LeaseConfig, run_while_leader};
pub use shared::{Change, SharedReflector};
pub use store::{ObjectRef, Store, reflector, store};
pub use watcher::{Event, WatcherConfig, watcher};
