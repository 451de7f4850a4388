//! Where navctl finds the api-server, the credentials it connects with and the namespace it works in.
//!
//! The credentials (the api-server's CA, a client certificate and key, or a token) come from a
//! kubeconfig: `--kubeconfig`, else `$NAVCTL_KUBECONFIG`, else the config file's `kubeconfig` key (`make
//! up` writes it); there is no default, and without one no command reaches the api-server.
//!
//! The address: `--server`, else `$NAVCTL_SERVER`, else the config file's `server`, else the
//! kubeconfig's. The namespace: `-n`, else the config file's, else the kubeconfig context's, else
//! `default`. A kubeconfig given by `--kubeconfig` or `$NAVCTL_KUBECONFIG` may be another cluster's:
//! its address and namespace then come before the config file's. The config file is `$NAVCTL_CONFIG`,
//! else `~/.navarch/config.yaml`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use navarch_client::Connection;
use serde::{Deserialize, Serialize};

/// Shown (and used in messages) when neither a flag, the environment, the file nor a kubeconfig names
/// the api-server.
pub const DEFAULT_SERVER: &str = navarch_api::well_known::API_SERVER;
pub const DEFAULT_NAMESPACE: &str = "default";
pub const ENV_SERVER: &str = "NAVCTL_SERVER";
pub const ENV_CONFIG: &str = "NAVCTL_CONFIG";
pub const ENV_KUBECONFIG: &str = "NAVCTL_KUBECONFIG";

/// The error of a command that needs the api-server when no kubeconfig is configured.
pub const NO_CREDENTIALS: &str = "no credentials: set kubeconfig in ~/.navarch/config.yaml (make up writes it), \
                                  set $NAVCTL_KUBECONFIG or pass --kubeconfig";

/// The config file's format.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The kubeconfig to connect with; relative to the config file's directory, `~/` is the home
    /// directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
}

/// Where a setting came from (shown by `navctl config view`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env(&'static str),
    File(PathBuf),
    Kubeconfig(PathBuf),
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Source::Flag => f.write_str("command-line flag"),
            Source::Env(var) => write!(f, "environment variable {var}"),
            Source::File(p) => write!(f, "config file {}", p.display()),
            Source::Kubeconfig(p) => write!(f, "kubeconfig {}", p.display()),
            Source::Default => f.write_str("default"),
        }
    }
}

/// The settings in effect.
#[derive(Debug, Clone)]
pub struct Config {
    /// The api-server's address, as given (for messages); the connection uses it.
    pub server: String,
    pub server_source: Source,
    pub namespace: String,
    pub namespace_source: Source,
    /// The kubeconfig and where its path came from (`None`: no credentials).
    pub kubeconfig: Option<(PathBuf, Source)>,
    /// The config file consulted (whether or not it exists), if any.
    pub file: Option<PathBuf>,
    /// What to connect with, or why navctl cannot.
    connection: Result<Connection, String>,
}

impl Config {
    /// True when the namespace was given on the command line (`-n`): a manifest naming another
    /// namespace is then an error, as in kubectl.
    pub fn namespace_is_explicit(&self) -> bool {
        self.namespace_source == Source::Flag
    }

    /// The address and credentials to connect with: the kubeconfig's, with the address of `--server`,
    /// `$NAVCTL_SERVER` or the config file when one is given.
    pub fn connection(&self) -> anyhow::Result<&Connection> {
        self.connection.as_ref().map_err(|e| anyhow!("{e}"))
    }
}

/// The inputs of config resolution, gathered from the process (flags, environment, home directory) so
/// that [`resolve`] reads nothing but files and is testable.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub server_flag: Option<String>,
    pub namespace_flag: Option<String>,
    pub kubeconfig_flag: Option<PathBuf>,
    pub env_server: Option<String>,
    pub env_config: Option<PathBuf>,
    pub env_kubeconfig: Option<PathBuf>,
    pub home: Option<PathBuf>,
}

impl Inputs {
    pub fn from_process(
        server_flag: Option<String>,
        namespace_flag: Option<String>,
        kubeconfig_flag: Option<PathBuf>,
    ) -> Inputs {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Inputs {
            server_flag,
            namespace_flag,
            kubeconfig_flag,
            env_server: var(ENV_SERVER),
            env_config: var(ENV_CONFIG).map(PathBuf::from),
            env_kubeconfig: var(ENV_KUBECONFIG).map(PathBuf::from),
            home: var("HOME").map(PathBuf::from),
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
            "config file {}: expected `server: HOST:PORT`, `kubeconfig: PATH` and `namespace: NAME`, each \
             optional",
            path.display()
        )
    })?;
    Ok(Some(cfg))
}

/// A `kubeconfig` path of the config file `file`: `~/` is the home directory, a relative path is
/// relative to the file's directory.
fn file_relative(path: &Path, file: &Path, home: Option<&Path>) -> PathBuf {
    if let (Ok(rest), Some(home)) = (path.strip_prefix("~"), home) {
        return home.join(rest);
    }
    match file.parent() {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    }
}

/// Applies the precedence rules; reads the config file and the kubeconfig. A kubeconfig that cannot
/// be used is not an error here (`navctl config view` still works): [`Config::connection`] reports it.
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
    let file_path = file.clone().unwrap_or_default();
    let file_source = || Source::File(file_path.clone());

    let kubeconfig = if let Some(k) = &inputs.kubeconfig_flag {
        Some((k.clone(), Source::Flag))
    } else if let Some(k) = &inputs.env_kubeconfig {
        Some((k.clone(), Source::Env(ENV_KUBECONFIG)))
    } else {
        file_cfg
            .as_ref()
            .and_then(|c| c.kubeconfig.as_ref())
            .map(|k| (file_relative(k, &file_path, inputs.home.as_deref()), file_source()))
    };
    if kubeconfig.as_ref().is_some_and(|(k, _)| k.as_os_str().is_empty()) {
        bail!(
            "the kubeconfig path from the {} is empty",
            kubeconfig.map(|(_, s)| s).unwrap_or(Source::Default)
        );
    }
    let loaded = match &kubeconfig {
        Some((path, source)) => Connection::from_kubeconfig(path)
            .map_err(|e| format!("the kubeconfig from the {source}: {e}"))
            .map(|(conn, namespace)| (conn, namespace, path.clone())),
        None => Err(NO_CREDENTIALS.to_string()),
    };

    // A kubeconfig named by the command line or the environment brings its own address and namespace:
    // the config file's describe the cluster of the config file's kubeconfig.
    let explicit = kubeconfig.as_ref().is_some_and(|(_, s)| matches!(s, Source::Flag | Source::Env(_)));
    let from_kubeconfig = loaded.as_ref().ok();
    let file_server = file_cfg.as_ref().and_then(|c| c.server.clone()).filter(|_| !explicit);
    let (server, server_source) = if let Some(s) = &inputs.server_flag {
        (s.clone(), Source::Flag)
    } else if let Some(s) = &inputs.env_server {
        (s.clone(), Source::Env(ENV_SERVER))
    } else if let Some(s) = file_server {
        (s, file_source())
    } else if let Some((conn, _, path)) = from_kubeconfig {
        (conn.server.clone(), Source::Kubeconfig(path.clone()))
    } else if let Some(s) = file_cfg.as_ref().and_then(|c| c.server.clone()) {
        (s, file_source())
    } else {
        (DEFAULT_SERVER.to_string(), Source::Default)
    };
    let kubeconfig_namespace = from_kubeconfig.filter(|(_, n, _)| !n.is_empty());
    let file_namespace = file_cfg
        .as_ref()
        .and_then(|c| c.namespace.clone())
        .filter(|_| !(explicit && kubeconfig_namespace.is_some()));
    let (namespace, namespace_source) = if let Some(n) = &inputs.namespace_flag {
        (n.clone(), Source::Flag)
    } else if let Some(n) = file_namespace {
        (n, file_source())
    } else if let Some((_, n, path)) = kubeconfig_namespace {
        (n.clone(), Source::Kubeconfig(path.clone()))
    } else {
        (DEFAULT_NAMESPACE.to_string(), Source::Default)
    };
    if server.trim().is_empty() {
        bail!("the api-server address from the {server_source} is empty");
    }
    if namespace.is_empty() {
        bail!("the namespace from the {namespace_source} is empty");
    }
    let connection = loaded.map(|(conn, _, _)| match server_source {
        Source::Kubeconfig(_) | Source::Default => conn,
        _ => conn.with_server(server.trim()),
    });
    Ok(Config { server, server_source, namespace, namespace_source, kubeconfig, file, connection })
}

/// `navctl config view`: the effective settings and where each came from.
pub fn view(cfg: &Config) -> String {
    let mut out = String::new();
    out.push_str(&format!("server: {}\n", cfg.server));
    out.push_str(&format!("namespace: {}\n", cfg.namespace));
    match &cfg.kubeconfig {
        Some((path, _)) => out.push_str(&format!("kubeconfig: {}\n", path.display())),
        None => out.push_str("kubeconfig: null\n"),
    }
    out.push_str(&format!("# server from the {}\n", cfg.server_source));
    out.push_str(&format!("# namespace from the {}\n", cfg.namespace_source));
    match (&cfg.kubeconfig, &cfg.connection) {
        (Some((_, source)), Ok(conn)) => {
            let credential = match (&conn.identity, &conn.token) {
                (Some(_), _) => "a client certificate",
                (None, Some(_)) => "a bearer token",
                (None, None) => "no credential (anonymous)",
            };
            out.push_str(&format!("# kubeconfig from the {source}: {credential}\n"));
        }
        (Some((_, source)), Err(e)) => {
            out.push_str(&format!("# kubeconfig from the {source}, unusable: {e}\n"));
        }
        (None, _) => out.push_str(&format!("# kubeconfig: none ({NO_CREDENTIALS})\n")),
    }
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

    /// A kubeconfig naming `server`, a client certificate and, when not empty, a namespace.
    fn write_kubeconfig(path: &Path, server: &str, namespace: &str) {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let ns = if namespace.is_empty() { String::new() } else { format!(", namespace: {namespace}") };
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: '{server}', \
             certificate-authority-data: {}}}\nusers:\n- name: u\n  user: {{client-certificate-data: {}, \
             client-key-data: {}}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u{ns}}}\n\
             current-context: x\n",
            b64("CA"),
            b64("CERT"),
            b64("KEY"),
        );
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn without_a_kubeconfig_there_are_no_credentials() {
        let d = Dir::new("nocreds");
        let cfg = resolve(&Inputs { home: Some(d.0.clone()), ..Default::default() }).unwrap();
        assert!(cfg.kubeconfig.is_none());
        let err = cfg.connection().unwrap_err().to_string();
        assert!(err.starts_with("no credentials: set kubeconfig in ~/.navarch/config.yaml"), "{err}");
        assert!(view(&cfg).contains("kubeconfig: null\n"), "{}", view(&cfg));
    }

    #[test]
    fn kubeconfig_flag_beats_env_beats_file_relative_to_the_file() {
        let d = Dir::new("kubeconfig");
        write_kubeconfig(&d.0.join(".navarch/kc-file"), "https://10.0.0.1:6443", "from-kc");
        write_kubeconfig(&d.0.join("kc-env"), "https://10.0.0.2:6443", "");
        write_kubeconfig(&d.0.join("kc-flag"), "https://10.0.0.3:6443", "");
        d.write_home_config("kubeconfig: kc-file\n");
        let base = Inputs { home: Some(d.0.clone()), ..Default::default() };

        let cfg = resolve(&base).unwrap();
        let (path, source) = cfg.kubeconfig.clone().unwrap();
        assert_eq!(path, d.0.join(".navarch/kc-file"));
        assert!(matches!(source, Source::File(_)));
        // The address and the namespace come from the kubeconfig when nothing else names them.
        assert_eq!(cfg.server, "https://10.0.0.1:6443");
        assert_eq!(cfg.server_source, Source::Kubeconfig(path.clone()));
        assert_eq!((cfg.namespace.as_str(), &cfg.namespace_source), ("from-kc", &Source::Kubeconfig(path)));
        let conn = cfg.connection().unwrap();
        assert_eq!(
            (conn.server.as_str(), conn.ca_pem.as_slice()),
            ("https://10.0.0.1:6443", b"CA".as_slice())
        );
        assert_eq!(conn.identity, Some((b"CERT".to_vec(), b"KEY".to_vec())));
        let shown = view(&cfg);
        assert!(
            shown.contains(&format!("kubeconfig: {}\n", d.0.join(".navarch/kc-file").display())),
            "{shown}"
        );
        assert!(
            shown.contains("# kubeconfig from the config file ") && shown.contains("a client certificate"),
            "{shown}"
        );

        let env = Inputs { env_kubeconfig: Some(d.0.join("kc-env")), ..base.clone() };
        let cfg = resolve(&env).unwrap();
        assert_eq!(cfg.kubeconfig.clone().unwrap().1, Source::Env(ENV_KUBECONFIG));
        assert_eq!((cfg.server.as_str(), cfg.namespace.as_str()), ("https://10.0.0.2:6443", "default"));

        let flag = Inputs { kubeconfig_flag: Some(d.0.join("kc-flag")), ..env.clone() };
        let cfg = resolve(&flag).unwrap();
        assert_eq!(cfg.kubeconfig.clone().unwrap().1, Source::Flag);
        assert_eq!(cfg.connection().unwrap().server, "https://10.0.0.3:6443");

        // `~/` in the file is the home directory.
        d.write_home_config("kubeconfig: ~/kc-env\n");
        let cfg = resolve(&base).unwrap();
        assert_eq!(cfg.kubeconfig.unwrap().0, d.0.join("kc-env"));
    }

    #[test]
    fn server_settings_override_the_kubeconfig_address() {
        let d = Dir::new("override");
        write_kubeconfig(&d.0.join("kc"), "https://10.0.0.1:6443", "");
        d.write_home_config(&format!("kubeconfig: {}\nserver: 10.0.0.5:5\n", d.0.join("kc").display()));
        let base = Inputs { home: Some(d.0.clone()), ..Default::default() };
        let cfg = resolve(&base).unwrap();
        assert!(matches!(cfg.server_source, Source::File(_)));
        assert_eq!(
            (cfg.server.as_str(), cfg.connection().unwrap().server.as_str()),
            ("10.0.0.5:5", "https://10.0.0.5:5")
        );
        let cfg = resolve(&Inputs { server_flag: Some("https://h:7".into()), ..base }).unwrap();
        assert_eq!(cfg.connection().unwrap().server, "https://h:7");
        // The credentials stay the kubeconfig's.
        assert_eq!(cfg.connection().unwrap().ca_pem, b"CA");
    }

    #[test]
    fn an_explicit_kubeconfig_brings_its_own_address_and_namespace() {
        let d = Dir::new("explicit");
        write_kubeconfig(&d.0.join("mine"), "https://10.0.0.1:6443", "");
        write_kubeconfig(&d.0.join("other"), "https://10.9.9.9:6443", "elsewhere");
        d.write_home_config(&format!(
            "server: 10.0.0.1:6443\nnamespace: team\nkubeconfig: {}\n",
            d.0.join("mine").display()
        ));
        let base = Inputs { home: Some(d.0.clone()), ..Default::default() };
        let cfg = resolve(&Inputs { kubeconfig_flag: Some(d.0.join("other")), ..base.clone() }).unwrap();
        assert_eq!((cfg.server.as_str(), cfg.namespace.as_str()), ("https://10.9.9.9:6443", "elsewhere"));
        assert_eq!(cfg.connection().unwrap().server, "https://10.9.9.9:6443");
        // --server and -n still win.
        let cfg = resolve(&Inputs {
            env_kubeconfig: Some(d.0.join("other")),
            server_flag: Some("10.0.0.7:1".into()),
            namespace_flag: Some("x".into()),
            ..base.clone()
        })
        .unwrap();
        assert_eq!(
            (cfg.connection().unwrap().server.as_str(), cfg.namespace.as_str()),
            ("https://10.0.0.7:1", "x")
        );
        // A kubeconfig without a namespace leaves the config file's.
        let cfg = resolve(&Inputs { kubeconfig_flag: Some(d.0.join("mine")), ..base }).unwrap();
        assert_eq!((cfg.server.as_str(), cfg.namespace.as_str()), ("https://10.0.0.1:6443", "team"));
    }

    #[test]
    fn an_unusable_kubeconfig_is_reported_when_connecting() {
        let d = Dir::new("unusable");
        let missing = d.0.join("missing");
        let cfg = resolve(&Inputs {
            home: Some(d.0.clone()),
            kubeconfig_flag: Some(missing),
            ..Default::default()
        })
        .unwrap();
        let err = cfg.connection().unwrap_err().to_string();
        assert!(
            err.starts_with("the kubeconfig from the command-line flag: ") && err.contains("missing"),
            "{err}"
        );
        assert!(view(&cfg).contains("unusable"), "{}", view(&cfg));
        assert_eq!(cfg.server_source, Source::Default);
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
