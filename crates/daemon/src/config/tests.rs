//! The precedence, tested once here for every daemon: flag > env > file > default.

use std::net::SocketAddr;
use std::time::Duration;

use super::*;

/// A config shaped like a daemon's: strings, numbers, addresses, lists, durations, a bool flag.
#[derive(Debug, Clone, PartialEq, clap::Parser, serde::Serialize, serde::Deserialize)]
#[command(name = "sample")]
#[serde(deny_unknown_fields)]
struct Sample {
    /// api-server address.
    #[arg(long, default_value = "127.0.0.1:6443")]
    server: String,
    #[arg(long, default_value = "127.0.0.1:10259")]
    http_listen: SocketAddr,
    #[arg(long, default_value_t = 4)]
    workers: usize,
    #[arg(long, value_delimiter = ',')]
    upstream: Vec<String>,
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    #[serde(with = "duration")]
    heartbeat: Duration,
    #[arg(long, action = ArgAction::Set, default_value_t = true)]
    leader_elect: bool,
    #[arg(long)]
    identity: Option<String>,
    #[arg(long)]
    once: bool,
    #[arg(long, default_value = "default-scheduler")]
    scheduler_name: String,
}

impl DaemonConfig for Sample {
    const ENV_PREFIX: &'static str = "NAVARCH_SAMPLE";
    const ENV_ALIASES: &'static [(&'static str, &'static str)] = &[("NAVARCH_SAMPLE_NAME", "scheduler_name")];

    fn finish(&mut self) -> Result<(), String> {
        if self.workers == 0 {
            return Err("workers: must be at least 1".into());
        }
        Ok(())
    }
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

fn resolve_with(args: &[&str], env: &[(&str, &str)]) -> Result<Resolved<Sample>, ConfigError> {
    resolve::<Sample>(
        std::iter::once("sample").chain(args.iter().copied()),
        &Env::from_pairs(env.iter().copied()),
    )
}

#[test]
fn defaults_come_from_the_flags() {
    let c = resolve_with(&[], &[]).unwrap().config;
    assert_eq!(c.server, "127.0.0.1:6443");
    assert_eq!(c.http_listen, "127.0.0.1:10259".parse().unwrap());
    assert_eq!((c.workers, c.heartbeat, c.leader_elect, c.once), (4, Duration::from_secs(10), true, false));
    assert_eq!((c.identity, c.upstream), (None, vec![]));
}

#[test]
fn flag_beats_env_beats_file_beats_default() {
    let f = file(
        "server: 10.0.0.1:6443\nworkers: 7\nheartbeat: 1m30s\nupstream: [1.1.1.1, 8.8.8.8]\nidentity: file\n",
    );
    let path = f.path().to_str().unwrap();
    let r = resolve_with(&["--config", path], &[]).unwrap();
    assert_eq!(r.config_file.as_deref(), Some(f.path()));
    let c = r.config;
    assert_eq!(c.server, "10.0.0.1:6443", "file beats default");
    assert_eq!((c.workers, c.heartbeat), (7, Duration::from_secs(90)));
    assert_eq!(c.upstream, ["1.1.1.1", "8.8.8.8"]);
    assert_eq!(c.http_listen.port(), 10259, "default kept where the file is silent");

    let env = [
        ("NAVARCH_SAMPLE_WORKERS", "9"),
        ("NAVARCH_SAMPLE_UPSTREAM", "9.9.9.9"),
        ("NAVARCH_SAMPLE_IDENTITY", "env"),
    ];
    let c = resolve_with(&["--config", path], &env).unwrap().config;
    assert_eq!(
        (c.workers, c.upstream.as_slice(), c.identity.as_deref()),
        (9, &["9.9.9.9".to_string()][..], Some("env"))
    );
    assert_eq!(c.server, "10.0.0.1:6443", "file kept where env is silent");

    let c = resolve_with(&["--config", path, "--workers", "11", "--identity=flag"], &env).unwrap().config;
    assert_eq!((c.workers, c.identity.as_deref()), (11, Some("flag")), "flag beats env");
    assert_eq!(c.upstream, ["9.9.9.9"]);

    // A flag given with its default value still wins over the file and env.
    let c = resolve_with(&["--config", path, "--workers", "4"], &env).unwrap().config;
    assert_eq!(c.workers, 4);
}

#[test]
fn config_file_and_log_format_from_env() {
    let f = file("workers: 3\n");
    let env = [("NAVARCH_SAMPLE_CONFIG", f.path().to_str().unwrap()), ("NAVARCH_SAMPLE_LOG_FORMAT", "json")];
    let r = resolve_with(&[], &env).unwrap();
    assert_eq!((r.config.workers, r.log_format), (3, LogFormat::Json));
    let r = resolve_with(&["--log-format", "text"], &env).unwrap();
    assert_eq!(r.log_format, LogFormat::Text);
    let e = resolve_with(&[], &[("NAVARCH_SAMPLE_LOG_FORMAT", "xml")]).unwrap_err();
    assert_eq!(e.to_string(), "NAVARCH_SAMPLE_LOG_FORMAT: \"xml\": must be text or json");
}

#[test]
fn booleans_and_aliases_in_env() {
    let c = resolve_with(&[], &[("NAVARCH_SAMPLE_LEADER_ELECT", "false"), ("NAVARCH_SAMPLE_ONCE", "true")])
        .unwrap()
        .config;
    assert_eq!((c.leader_elect, c.once), (false, true));
    let c =
        resolve_with(&["--leader-elect=true"], &[("NAVARCH_SAMPLE_LEADER_ELECT", "false")]).unwrap().config;
    assert!(c.leader_elect);
    let c = resolve_with(&[], &[("NAVARCH_SAMPLE_NAME", "old-name")]).unwrap().config;
    assert_eq!(c.scheduler_name, "old-name");
    let c = resolve_with(&[], &[("NAVARCH_SAMPLE_NAME", "old"), ("NAVARCH_SAMPLE_SCHEDULER_NAME", "new")])
        .unwrap()
        .config;
    assert_eq!(c.scheduler_name, "new", "the derived name wins over the alias");
}

#[test]
fn unknown_keys_and_bad_values_name_the_key_and_where() {
    let f = file("servr: x\n");
    let e = resolve_with(&["--config", f.path().to_str().unwrap()], &[]).unwrap_err().to_string();
    assert!(e.starts_with(&format!("config file {}: unknown key `servr`", f.path().display())), "{e}");
    assert!(e.contains("server, http_listen"), "{e}");

    let f = file("workers: many\n");
    let e = resolve_with(&["--config", f.path().to_str().unwrap()], &[]).unwrap_err().to_string();
    assert!(e.starts_with(&format!("config file {}: workers: invalid type", f.path().display())), "{e}");

    let f = file("heartbeat: soon\n");
    let e = resolve_with(&["--config", f.path().to_str().unwrap()], &[]).unwrap_err().to_string();
    assert!(e.contains("heartbeat: \"soon\""), "{e}");

    let f = file("- a\n- b\n");
    let e = resolve_with(&["--config", f.path().to_str().unwrap()], &[]).unwrap_err().to_string();
    assert!(e.contains("must be a mapping"), "{e}");

    let e = resolve_with(&[], &[("NAVARCH_SAMPLE_WORKERS", "x")]).unwrap_err().to_string();
    assert!(e.starts_with("NAVARCH_SAMPLE_WORKERS: invalid value 'x' for '--workers"), "{e}");
    let e = resolve_with(&[], &[("NAVARCH_SAMPLE_ONCE", "maybe")]).unwrap_err().to_string();
    assert_eq!(e, "NAVARCH_SAMPLE_ONCE: \"maybe\": must be true or false");

    let e = resolve_with(&["--config", "/nonexistent/x.yaml"], &[]).unwrap_err().to_string();
    assert!(e.starts_with("reading config file /nonexistent/x.yaml:"), "{e}");

    let e = resolve_with(&["--workers", "0"], &[]).unwrap_err().to_string();
    assert_eq!(e, "workers: must be at least 1");

    assert!(matches!(resolve_with(&["--nope"], &[]), Err(ConfigError::Flags(_))));
}

#[test]
fn empty_file_and_print_config_round_trip() {
    let f = file("# nothing yet\n");
    let r =
        resolve_with(&["--config", f.path().to_str().unwrap(), "--print-config", "--heartbeat", "2m"], &[])
            .unwrap();
    assert!(r.print_config);
    let yaml = to_yaml(&r.config);
    assert!(yaml.contains("heartbeat: 2m\n"), "{yaml}");
    // The printed config is a valid config file giving the same result.
    let again = file(&yaml);
    let c = resolve_with(&["--config", again.path().to_str().unwrap()], &[]).unwrap().config;
    assert_eq!(c, r.config);
}

#[test]
fn help_keeps_the_daemons_about_and_names_its_variables() {
    let mut cmd = command::<Sample>();
    let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
    assert!(about.starts_with("A config shaped like a daemon's"), "{about}");
    let help = cmd.render_long_help().to_string();
    assert!(
        help.contains("also NAVARCH_SAMPLE_CONFIG") && help.contains("also NAVARCH_SAMPLE_LOG_FORMAT"),
        "{help}"
    );
}
