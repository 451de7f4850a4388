//! The one config loader: a daemon declares ONE struct that is both its flags (clap) and its file
//! schema (serde), and [`resolve`] layers it as flag > environment (`<PREFIX>_<KEY>`) > YAML file
//! (`--config`) > default (the struct's clap defaults).
//!
//! How a value travels (see ARCHITECTURE.md, "The daemon shell"):
//! 1. clap parses the command line into the struct; every field not given there holds its clap default.
//!    `ArgMatches::value_source` says which fields came from the command line.
//! 2. The struct is serialized into a YAML mapping `key -> value` (key = field name).
//! 3. The file's keys replace the defaults. A key the struct does not have, or a value of the wrong
//!    type, is an error naming the key and the file.
//! 4. Each `<PREFIX>_<KEY>` variable replaces the file's value; its text goes through the flag's own
//!    parser (`--key=<value>`), so flags and variables accept exactly the same spellings.
//! 5. Command-line values are never replaced. The mapping is deserialized back into the struct, then
//!    [`DaemonConfig::finish`] derives host-dependent defaults and checks rules across fields.
//!
//! The environment is passed in ([`Env`]), so tests never touch the process environment.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, Args, FromArgMatches};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

/// A daemon's configuration: one struct, both `clap::Parser` (flags, help, defaults) and serde (the
/// file schema and `--print-config`). Field names are the file keys; `--field-name` the flags.
pub trait DaemonConfig:
    clap::Parser + Serialize + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static
{
    /// Variables are `<ENV_PREFIX>_<KEY in upper case>`, e.g. `NAVARCH_SCHEDULER_SERVER`.
    const ENV_PREFIX: &'static str;
    /// Variable names kept from before the names were derived: `(variable, key)`.
    const ENV_ALIASES: &'static [(&'static str, &'static str)] = &[];
    /// Extra `tracing` directives applied unless `RUST_LOG` names the target (e.g. a chatty library).
    const LOG_DIRECTIVES: &'static [&'static str] = &[];

    /// Derives what depends on the host (node name, addresses) and checks rules that span fields.
    /// The error names the key: `"scheduler_name: must not be empty"`.
    fn finish(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// Output format of the logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

// The flags every daemon has, handled by the shell itself (not part of the config file). A plain
// comment: clap would take a doc comment as the daemon's `about`. Help texts are set in `command`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ShellFlags {
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub print_config: bool,
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
}

/// The daemon's command: its own flags, then the shell's, with help naming the daemon's variables.
fn command<C: DaemonConfig>() -> clap::Command {
    ShellFlags::augment_args(C::command())
        .mut_arg("config", |a| {
            a.help(format!(
                "YAML config file (keys as the long flags, with '_' for '-'); also {}",
                env_var::<C>("config")
            ))
        })
        .mut_arg("print_config", |a| a.help("Print the effective configuration as YAML and exit"))
        .mut_arg("log_format", |a| {
            a.help(format!("Log format (default: text); also {}", env_var::<C>("log_format")))
        })
}

/// What the shell resolved: the daemon's config and the shell's own settings.
#[derive(Debug)]
pub struct Resolved<C> {
    pub config: C,
    pub config_file: Option<PathBuf>,
    pub print_config: bool,
    pub log_format: LogFormat,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A bad flag, `--help` or `--version`: clap prints and exits with it.
    #[error("{0}")]
    Flags(#[from] clap::Error),
    #[error("reading config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("config file {path}: unknown key `{key}` (known keys: {known})")]
    UnknownKey { path: PathBuf, key: String, known: String },
    #[error("{var}: {message}")]
    Env { var: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// Where variables come from: the process environment in a daemon, a map in tests.
pub enum Env {
    Process,
    Map(BTreeMap<String, String>),
}

impl Env {
    /// A fixed set of variables (for tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
        Env::Map(pairs.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    pub fn get(&self, name: &str) -> Option<String> {
        match self {
            Env::Process => std::env::var(name).ok(),
            Env::Map(m) => m.get(name).cloned(),
        }
    }
}

/// The variable that sets `key`.
pub fn env_var<C: DaemonConfig>(key: &str) -> String {
    format!("{}_{}", C::ENV_PREFIX, key.to_uppercase())
}

/// Resolves `C` from `args` (the first item is the program name), `env` and the file `--config` names.
pub fn resolve<C: DaemonConfig>(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    env: &Env,
) -> Result<Resolved<C>, ConfigError> {
    let cmd = command::<C>();
    let matches = cmd.clone().try_get_matches_from(args)?;
    let shell = ShellFlags::from_arg_matches(&matches)?;
    let from_cli = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let explicit: HashSet<String> =
        cmd.get_arguments().map(|a| a.get_id().to_string()).filter(|id| from_cli(id)).collect();

    let config_file = shell.config.clone().or_else(|| env.get(&env_var::<C>("config")).map(PathBuf::from));
    let log_format = match shell.log_format {
        Some(f) => f,
        None => match env.get(&env_var::<C>("log_format")) {
            None => LogFormat::default(),
            Some(v) => <LogFormat as clap::ValueEnum>::from_str(&v, true).map_err(|_| ConfigError::Env {
                var: env_var::<C>("log_format"),
                message: format!("{v:?}: must be text or json"),
            })?,
        },
    };

    let parsed = C::from_arg_matches(&matches)?;
    let defaults = to_mapping(&parsed)?;
    let mut layered = defaults.clone();

    if let Some(path) = &config_file {
        let file = read_file(path)?;
        for (k, _) in &file {
            let key = k.as_str().unwrap_or_default();
            if !defaults.contains_key(k) {
                let known = defaults.keys().filter_map(Value::as_str).collect::<Vec<_>>().join(", ");
                return Err(ConfigError::UnknownKey { path: path.clone(), key: key.to_string(), known });
            }
        }
        // Types are checked on the file's own values, so an error names the file, not a later layer.
        let mut probe = defaults.clone();
        probe.extend(file.clone());
        from_mapping::<C>(probe).map_err(|message| ConfigError::File { path: path.clone(), message })?;
        for (k, v) in file {
            if !explicit.contains(k.as_str().unwrap_or_default()) {
                layered.insert(k, v);
            }
        }
    }

    let keys: Vec<String> = defaults.keys().filter_map(Value::as_str).map(str::to_string).collect();
    for key in keys.iter().filter(|k| !explicit.contains(k.as_str())) {
        let var = env_var::<C>(key);
        let alias = C::ENV_ALIASES.iter().find(|(_, k)| k == key).map(|(v, _)| v.to_string());
        let Some((var, text)) =
            [Some(var), alias].into_iter().flatten().find_map(|v| env.get(&v).map(|t| (v, t)))
        else {
            continue;
        };
        let value = env_value::<C>(&cmd, key, &text).map_err(|message| ConfigError::Env { var, message })?;
        layered.insert(Value::String(key.clone()), value);
    }

    let mut config = from_mapping::<C>(layered).map_err(ConfigError::Invalid)?;
    config.finish().map_err(ConfigError::Invalid)?;
    Ok(Resolved { config, config_file, print_config: shell.print_config, log_format })
}

/// [`resolve`] in one call, for tests: `args` without the program name, the environment from pairs;
/// the config, or the error's text.
pub fn resolve_args<C: DaemonConfig>(args: &[&str], env: &[(&str, &str)]) -> Result<C, String> {
    let argv = std::iter::once(C::command().get_name().to_string()).chain(args.iter().map(|a| a.to_string()));
    resolve::<C>(argv, &Env::from_pairs(env.iter().copied())).map(|r| r.config).map_err(|e| e.to_string())
}

/// [`resolve_args`] with `yaml` as the `--config` file (written to a temporary file), for tests.
pub fn resolve_yaml<C: DaemonConfig>(yaml: &str, args: &[&str], env: &[(&str, &str)]) -> Result<C, String> {
    static FILES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("navarch-config-{}-{n}.yaml", std::process::id()));
    std::fs::write(&path, yaml).map_err(|e| format!("writing {}: {e}", path.display()))?;
    let result = match path.to_str() {
        Some(p) => resolve_args::<C>(&[&["--config", p], args].concat(), env),
        None => Err(format!("{} is not UTF-8", path.display())),
    };
    let _ = std::fs::remove_file(&path);
    result
}

/// The effective configuration as YAML (what `--print-config` prints; a valid `--config` file).
pub fn to_yaml<C: Serialize>(config: &C) -> String {
    serde_yaml::to_string(config).unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
}

fn to_mapping<C: Serialize>(c: &C) -> Result<Mapping, ConfigError> {
    match serde_yaml::to_value(c) {
        Ok(Value::Mapping(m)) => Ok(m),
        Ok(other) => Err(ConfigError::Invalid(format!("the configuration is not a mapping: {other:?}"))),
        Err(e) => Err(ConfigError::Invalid(format!("the configuration cannot be written: {e}"))),
    }
}

/// Deserializes with the key path in the error: `"parallelism: invalid type: ..."`.
fn from_mapping<C: DeserializeOwned>(m: Mapping) -> Result<C, String> {
    serde_path_to_error::deserialize(Value::Mapping(m)).map_err(|e| {
        let path = e.path().to_string();
        if path == "." { e.inner().to_string() } else { format!("{path}: {}", e.inner()) }
    })
}

/// The file's mapping (empty for an empty file).
fn read_file(path: &Path) -> Result<Mapping, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
    let file_err = |message: String| ConfigError::File { path: path.into(), message };
    match serde_yaml::from_str::<Value>(&text).map_err(|e| file_err(e.to_string()))? {
        Value::Null => Ok(Mapping::new()),
        Value::Mapping(m) => {
            if let Some((k, _)) = m.iter().find(|(k, _)| !k.is_string()) {
                return Err(file_err(format!("keys must be strings, found {k:?}")));
            }
            Ok(m)
        }
        other => Err(file_err(format!("must be a mapping of keys to values, found {other:?}"))),
    }
}

/// `text` for `key` as the flag would take it: parsed by the flag's own parser.
fn env_value<C: DaemonConfig>(cmd: &clap::Command, key: &str, text: &str) -> Result<Value, String> {
    let arg = cmd.get_arguments().find(|a| a.get_id() == key).ok_or_else(|| format!("no flag for {key}"))?;
    let long = arg.get_long().ok_or_else(|| format!("{key} has no long flag"))?;
    let bin = cmd.get_name().to_string();
    let argv = match arg.get_action() {
        ArgAction::SetTrue => match text {
            "true" | "1" => vec![bin, format!("--{long}")],
            "false" | "0" | "" => vec![bin],
            _ => return Err(format!("{text:?}: must be true or false")),
        },
        _ => vec![bin, format!("--{long}={text}")],
    };
    let m = cmd.clone().try_get_matches_from(argv).map_err(|e| first_line(&e.to_string()))?;
    let parsed = C::from_arg_matches(&m).map_err(|e| first_line(&e.to_string()))?;
    let mut map = to_mapping(&parsed).map_err(|e| e.to_string())?;
    map.remove(key).ok_or_else(|| format!("{key} is not a config key"))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim_start_matches("error: ").to_string()
}

/// Durations written as flags are: `10s`, `1m30s`, `500ms`. Use as `#[serde(with = "...")]`.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| serde::de::Error::custom(format!("{s:?}: {e}")))
    }
}

/// An optional duration (`null`/absent: none), written as [`duration`] is.
pub mod optional_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) => humantime::parse_duration(&s)
                .map(Some)
                .map_err(|e| serde::de::Error::custom(format!("{s:?}: {e}"))),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests;
