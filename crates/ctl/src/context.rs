//! What every command works with: the resolved config, the connection to the api-server (made on first
//! use), and calls that turn client errors into kubectl's messages.

use std::io::Write;

use navarch_api::{KindInfo, Object};
use navarch_client::{Client, ListParams};
use tokio::sync::OnceCell;

use crate::config::Config;
use crate::errors::{self, Target, Verb};

/// How a command ended when it did not fail outright: `Failed` when some objects failed (their errors
/// were already printed) and the exit code must be 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    Success,
    Failed,
    /// Exit with this status (a command run by exec ended with it).
    Exit(u8),
}

impl Outcome {
    pub fn from_failed(failed: bool) -> Outcome {
        if failed { Outcome::Failed } else { Outcome::Success }
    }
}

pub struct Context {
    pub config: Config,
    client: OnceCell<Client>,
    /// `--as` / `--as-group`.
    impersonation: Option<navarch_client::Impersonation>,
}

/// Writes to stdout; output to a closed pipe (`navctl get pods | head -1`) ends the process quietly.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to standard output: {e}");
        std::process::exit(1);
    }
}

/// Prints a line on stdout.
pub fn say(line: impl AsRef<str>) {
    emit(&format!("{}\n", line.as_ref()));
}

impl Context {
    pub fn new(config: Config) -> Context {
        Context { config, client: OnceCell::new(), impersonation: None }
    }

    /// Every call acts as another user (`--as`, `--as-group`); `None`: as the configured one.
    pub fn impersonating(mut self, impersonation: Option<navarch_client::Impersonation>) -> Context {
        self.impersonation = impersonation;
        self
    }

    /// The namespace commands work in (`-n`, else the config file's, else `default`).
    pub fn namespace(&self) -> &str {
        &self.config.namespace
    }

    pub fn server(&self) -> &str {
        &self.config.server
    }

    /// The api-server connection, made on first use.
    pub async fn client(&self) -> anyhow::Result<&Client> {
        self.client
            .get_or_try_init(|| async {
                let connection = self.config.connection()?;
                let client =
                    Client::connect(connection).await.map_err(|e| errors::general(e, &self.config.server))?;
                Ok::<_, anyhow::Error>(client.impersonating(self.impersonation.clone()))
            })
            .await
    }

    /// The namespace to use for `kind`: empty for cluster-scoped kinds.
    pub fn namespace_for(&self, kind: &KindInfo, namespace: &str) -> String {
        if kind.namespaced { namespace.to_string() } else { String::new() }
    }

    pub async fn get(&self, kind: &'static KindInfo, namespace: &str, name: &str) -> anyhow::Result<Object> {
        let ns = self.namespace_for(kind, namespace);
        self.client()
            .await?
            .get(kind.kind, &ns, name)
            .await
            .map_err(|e| self.describe(e, Verb::Get, Target { kind, name, source: None }))
    }

    /// How many times a write that hit a conflict is tried in all ([`Context::modify`], rollout).
    pub const CONFLICT_ATTEMPTS: usize = 10;

    /// Reads an object, lets `change` modify it and writes it back. When someone else wrote in
    /// between (a conflict, e.g. a controller updating the status), it reads and applies the change
    /// again: kubectl's patches for scale, set image and the like never fail that way.
    pub async fn modify(
        &self,
        kind: &'static KindInfo,
        name: &str,
        mut change: impl FnMut(&mut Object) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        for attempt in 1.. {
            let mut o = self.get(kind, self.namespace(), name).await?;
            change(&mut o)?;
            match self.client().await?.update(&o).await {
                Ok(_) => return Ok(()),
                Err(navarch_client::Error::Conflict(_)) if attempt < Self::CONFLICT_ATTEMPTS => continue,
                Err(e) => return Err(self.describe(e, Verb::Update, Target { kind, name, source: None })),
            }
        }
        unreachable!("the loop returns")
    }

    /// Like [`Context::get`], `None` when absent.
    pub async fn get_opt(
        &self,
        kind: &'static KindInfo,
        namespace: &str,
        name: &str,
    ) -> anyhow::Result<Option<Object>> {
        let ns = self.namespace_for(kind, namespace);
        match self.client().await?.get(kind.kind, &ns, name).await {
            Ok(o) => Ok(Some(o)),
            Err(navarch_client::Error::NotFound(_)) => Ok(None),
            Err(e) => Err(self.describe(e, Verb::Get, Target { kind, name, source: None })),
        }
    }

    /// Every object of a kind matching the selectors, read in pages of `chunk_size` (0: one page).
    /// Returns the objects and the resourceVersion to watch from.
    pub async fn list(
        &self,
        kind: &'static KindInfo,
        params: &ListParams,
        chunk_size: i64,
    ) -> anyhow::Result<(Vec<Object>, String)> {
        let client = self.client().await?;
        let mut p = ListParams {
            namespace: self.namespace_for(kind, &params.namespace),
            limit: chunk_size.max(0),
            continue_token: String::new(),
            ..params.clone()
        };
        let mut items = Vec::new();
        loop {
            let page = client.list(kind.kind, &p).await.map_err(|e| errors::general(e, self.server()))?;
            items.extend(page.items);
            if page.continue_token.is_empty() {
                return Ok((items, page.resource_version));
            }
            p.continue_token = page.continue_token;
        }
    }

    /// kubectl's message for a failed call on one object.
    pub fn describe(&self, err: navarch_client::Error, verb: Verb, target: Target) -> anyhow::Error {
        errors::describe(err, self.server(), verb, target)
    }
}
