//! Where navctl finds the api-server and which namespace it works in.
//!
//! Precedence, highest first: the `--server` / `-n` flags, the `NAVCTL_SERVER` environment variable, the
//! config file (`$NAVCTL_CONFIG`, else `~/.navarch/config.yaml`, written by `make up`), the defaults
//! (`127.0.0.1:6443`, namespace `default`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

pub const DEFAULT_SERVER: &str = navarch_api::well_known::API_SERVER;
pub const DEFAULT_NAMESPACE: &str = "default";
pub const ENV_SERVER: &str = "NAVCTL_SERVER";
pub const ENV_CONFIG: &str = "NAVCTL_CONFIG";

/// The config file's format.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Where a setting came from (shown by `navctl config view`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env(&'static str),
    File(PathBuf),
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Source::Flag => f.write_str("command-line flag"),
            Source::Env(var) => write!(f, "environment variable {var}"),
            Source::File(p) => write!(f, "config file {}", p.display()),
            Source::Default => f.write_str("default"),
        }
    }
}

/// The settings in effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub server: String,
    pub server_source: Source,
    pub namespace: String,
    pub namespace_source: Source,
    /// The config file consulted (whether or not it exists), if any.
    pub file: Option<PathBuf>,
}

impl Config {
    /// True when the namespace was given on the command line (`-n`): a manifest naming another
    /// namespace is then an error, as in kubectl.
    pub fn namespace_is_explicit(&self) -> bool {
        self.namespace_source == Source::Flag
    }
}

/// The inputs of config resolution, gathered from the process (flags, environment, home directory) so
/// that [`resolve`] itself is pure and testable.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub server_flag: Option<String>,
    pub namespace_flag: Option<String>,
    pub env_server: Option<String>,
    pub env_config: Option<PathBuf>,
    pub home: Option<PathBuf>,
}

impl Inputs {
    pub fn from_process(server_flag: Option<String>, namespace_flag: Option<String>) -> Inputs {
        let non_empty = |v: String| (!v.is_empty()).then_some(v);
        Inputs {
            server_flag,
            namespace_flag,
            env_server: std::env::var(ENV_SERVER).ok().and_then(non_empty),
            env_config: std::env::var(ENV_CONFIG).ok().and_then(non_empty).map(PathBuf::from),
            home: std::env::var("HOME").ok().and_then(non_empty).map(PathBuf::from),
        }
    }
}

/// Reads a config file. `Ok(None)` when it does not exist.
pub fn read_file(path: &Path) -> anyhow::Result<Option<FileConfig>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading config file {}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(Some(FileConfig::default()));
    }
    let cfg = serde_yaml::from_str(&text).with_context(|| {
        format!(
            "config file {}: expected `server: HOST:PORT` and optionally `namespace: NAME`",
            path.display()
        )
    })?;
    Ok(Some(cfg))
}

/// Applies the precedence rules.
pub fn resolve(inputs: &Inputs) -> anyhow::Result<Config> {
    let file = inputs
        .env_config
        .clone()
        .or_else(|| inputs.home.as_ref().map(|h| h.join(".navarch").join("config.yaml")));
    let file_cfg = match &file {
        Some(path) => match read_file(path)? {
            Some(c) => Some(c),
            None if inputs.env_config.is_some() => {
                bail!("config file {} (from ${ENV_CONFIG}) does not exist", path.display())
            }
            None => None,
        },
        None => None,
    };
    let file_source = || Source::File(file.clone().unwrap_or_default());

    let (server, server_source) = if let Some(s) = &inputs.server_flag {
        (s.clone(), Source::Flag)
    } else if let Some(s) = &inputs.env_server {
        (s.clone(), Source::Env(ENV_SERVER))
    } else if let Some(s) = file_cfg.as_ref().and_then(|c| c.server.clone()) {
        (s, file_source())
    } else {
        (DEFAULT_SERVER.to_string(), Source::Default)
    };
    let (namespace, namespace_source) = if let Some(n) = &inputs.namespace_flag {
        (n.clone(), Source::Flag)
    } else if let Some(n) = file_cfg.as_ref().and_then(|c| c.namespace.clone()) {
        (n, file_source())
    } else {
        (DEFAULT_NAMESPACE.to_string(), Source::Default)
    };
    if server.trim().is_empty() {
        bail!("the api-server address from the {server_source} is empty");
    }
    if namespace.is_empty() {
        bail!("the namespace from the {namespace_source} is empty");
    }
    Ok(Config { server, server_source, namespace, namespace_source, file })
}

/// `navctl config view`: the effective settings and where each came from.
pub fn view(cfg: &Config) -> String {
    let mut out = String::new();
    out.push_str(&format!("server: {}\n", cfg.server));
    out.push_str(&format!("namespace: {}\n", cfg.namespace));
    out.push_str(&format!("# server from the {}\n", cfg.server_source));
    out.push_str(&format!("# namespace from the {}\n", cfg.namespace_source));
    match &cfg.file {
        Some(p) if p.exists() => out.push_str(&format!("# config file: {}\n", p.display())),
        Some(p) => out.push_str(&format!("# config file: {} (absent)\n", p.display())),
        None => out.push_str("# config file: none ($HOME is not set)\n"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);
    impl Dir {
        fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!("navctl-config-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(p.join(".navarch")).unwrap();
            Dir(p)
        }
        fn write_home_config(&self, text: &str) {
            std::fs::write(self.0.join(".navarch/config.yaml"), text).unwrap();
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn defaults_without_file() {
        let d = Dir::new("defaults");
        let cfg = resolve(&Inputs { home: Some(d.0.clone()), ..Default::default() }).unwrap();
        assert_eq!(cfg.server, DEFAULT_SERVER);
        assert_eq!(cfg.server_source, Source::Default);
        assert_eq!(cfg.namespace, "default");
        assert!(!cfg.namespace_is_explicit());
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let d = Dir::new("precedence");
        d.write_home_config("server: 10.0.0.1:1\nnamespace: team\n");
        let base = Inputs { home: Some(d.0.clone()), ..Default::default() };

        let cfg = resolve(&base).unwrap();
        assert_eq!((cfg.server.as_str(), cfg.namespace.as_str()), ("10.0.0.1:1", "team"));
        assert!(matches!(cfg.server_source, Source::File(_)));

        let env = Inputs { env_server: Some("10.0.0.2:2".into()), ..base.clone() };
        let cfg = resolve(&env).unwrap();
        assert_eq!(cfg.server, "10.0.0.2:2");
        assert_eq!(cfg.server_source, Source::Env(ENV_SERVER));
        assert_eq!(cfg.namespace, "team");

        let flag = Inputs {
            server_flag: Some("10.0.0.3:3".into()),
            namespace_flag: Some("prod".into()),
            ..env.clone()
        };
        let cfg = resolve(&flag).unwrap();
        assert_eq!((cfg.server.as_str(), cfg.namespace.as_str()), ("10.0.0.3:3", "prod"));
        assert!(cfg.namespace_is_explicit());
    }

    #[test]
    fn env_config_path_overrides_home_and_must_exist() {
        let home = Dir::new("home");
        home.write_home_config("server: 10.0.0.1:1\n");
        let other = Dir::new("other");
        let path = other.0.join("c.yaml");
        std::fs::write(&path, "server: 10.0.0.9:9\n").unwrap();
        let cfg = resolve(&Inputs {
            home: Some(home.0.clone()),
            env_config: Some(path.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(cfg.server, "10.0.0.9:9");
        assert_eq!(cfg.namespace, "default");

        let err = resolve(&Inputs { env_config: Some(other.0.join("missing.yaml")), ..Default::default() })
            .unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    #[test]
    fn bad_file_is_a_clear_error() {
        let d = Dir::new("bad");
        d.write_home_config("server: 1.2.3.4:5\nsevrer: x\n");
        let err = resolve(&Inputs { home: Some(d.0.clone()), ..Default::default() }).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("config.yaml") && msg.contains("unknown field `sevrer`"), "{msg}");
    }
}
