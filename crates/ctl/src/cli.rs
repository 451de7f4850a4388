//! The command line (clap). Usage errors exit with status 2.

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

use crate::printers::Format;

#[derive(Debug, Parser)]
#[command(
    name = "navctl",
    version,
    about = "navctl controls the navarch cluster manager (a kubectl for navarch)",
    propagate_version = true
)]
pub struct Cli {
    /// The api-server address (HOST:PORT or https://HOST:PORT); else $NAVCTL_SERVER, else the config
    /// file's `server`, else the kubeconfig's.
    #[arg(long, global = true, value_name = "ADDR")]
    pub server: Option<String>,
    /// The kubeconfig with the api-server's CA and the credentials to connect with; else
    /// $NAVCTL_KUBECONFIG, else the config file's `kubeconfig` (written by `make up`).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The namespace scope for this request.
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Username to impersonate for the operation (a user or a ServiceAccount,
    /// `system:serviceaccount:NS:NAME`).
    #[arg(long = "as", global = true, value_name = "USER")]
    pub as_user: Option<String>,
    /// Group to impersonate for the operation (repeatable).
    #[arg(long = "as-group", global = true, value_name = "GROUP")]
    pub as_group: Vec<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update objects from manifests (client-side apply).
    Apply(FileArgs),
    /// Create objects from manifests (fails for objects that exist), or a ServiceAccount token.
    Create(CreateArgs),
    /// Replace objects with the manifests' content.
    Replace(FileArgs),
    /// Display one or many objects.
    Get(GetArgs),
    /// Show details of objects, with their events.
    Describe(DescribeArgs),
    /// Delete objects by file, by kind and name, or by label selector.
    Delete(DeleteArgs),
    /// Update the labels of objects (`k=v` sets, `k-` removes).
    Label(MetadataArgs),
    /// Update the annotations of objects (`k=v` sets, `k-` removes).
    Annotate(MetadataArgs),
    /// Set the replicas of a Deployment, ReplicaSet, ReplicationController or StatefulSet.
    Scale(ScaleArgs),
    /// Create a HorizontalPodAutoscaler for a Deployment, ReplicaSet, StatefulSet or ReplicationController.
    Autoscale(AutoscaleArgs),
    /// Create a Service for a Deployment, ReplicaSet, ReplicationController, Pod or Service (its selector
    /// or labels).
    Expose(ExposeArgs),
    /// Change a field of objects (`set image`).
    #[command(subcommand)]
    Set(SetCommand),
    /// Manage a Deployment's rollout: status, history, undo, pause, resume, restart.
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// Mark a node unschedulable.
    Cordon(NodeArgs),
    /// Mark a node schedulable again.
    Uncordon(NodeArgs),
    /// Cordon a node and evict its pods so their controllers recreate them elsewhere.
    Drain(DrainArgs),
    /// Print the logs of a container in a pod.
    Logs(LogsArgs),
    /// Run a command in a container of a pod.
    Exec(ExecArgs),
    /// Show CPU and memory usage of nodes or pods (from the kubelets' cgroup readings).
    #[command(subcommand)]
    Top(TopCommand),
    /// Inspect authorization: `can-i`, `whoami`.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Print the client and server versions.
    Version,
    /// Print the kinds the api-server serves.
    ApiResources,
    /// Print a shell completion script (bash, zsh, fish).
    Completion {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// navctl's configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// `create -f FILE`, `create token SERVICE_ACCOUNT`, or `create job NAME`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct CreateArgs {
    #[command(subcommand)]
    pub command: Option<CreateCommand>,
    #[command(flatten)]
    pub files: FileArgs,
}

#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// Request a ServiceAccount token (printed without a newline unless on a terminal).
    Token(TokenArgs),
    /// Create a Job: from a CronJob's job template (`--from=cronjob/NAME`, run it now) or an image.
    Job(JobArgs),
}

#[derive(Debug, Args)]
pub struct JobArgs {
    /// The Job's name.
    pub name: String,
    /// The CronJob whose job template to use: `cronjob/NAME`.
    #[arg(long)]
    pub from: Option<String>,
    /// The image of the Job's one container.
    #[arg(long)]
    pub image: Option<String>,
    /// The container's command (after `--`).
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The ServiceAccount, in the current namespace.
    #[arg(value_name = "SERVICE_ACCOUNT_NAME")]
    pub name: String,
    /// Requested lifetime (`10m`, `1h`); the server's default (1h) when unset. The server may shorten it.
    #[arg(long)]
    pub duration: Option<String>,
    /// Audience of the token (repeatable); the api-server's audiences when unset.
    #[arg(long)]
    pub audience: Vec<String>,
    /// Kind of an object to bind the token to: Pod, Secret or Node. Requires --bound-object-name.
    #[arg(long)]
    pub bound_object_kind: Option<String>,
    /// Name of the object to bind the token to: the token stops working when it is deleted.
    #[arg(long)]
    pub bound_object_name: Option<String>,
    /// UID of the object to bind the token to (default: its current uid).
    #[arg(long)]
    pub bound_object_uid: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Check whether an action is allowed: `can-i VERB TYPE[/NAME]`, `can-i VERB /URL`, or `--list`.
    /// Prints yes (exit 0) or no (exit 1).
    #[command(name = "can-i")]
    CanI(CanIArgs),
    /// Print who the api-server takes you for (username, uid, groups, extra).
    Whoami(WhoamiArgs),
}

#[derive(Debug, Args)]
pub struct CanIArgs {
    /// VERB and TYPE[/NAME] (or a non-resource URL starting with /); none with --list.
    #[arg(value_name = "ARGS")]
    pub args: Vec<String>,
    /// Check the action in all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Print nothing; only the exit status answers.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// A subresource, such as log or scale.
    #[arg(long, default_value = "")]
    pub subresource: String,
    /// List every allowed action in the namespace.
    #[arg(long)]
    pub list: bool,
    /// With --list: no header line.
    #[arg(long)]
    pub no_headers: bool,
}

#[derive(Debug, Args)]
pub struct WhoamiArgs {
    /// Output format: json or yaml (default: a table).
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExposeArgs {
    /// KIND NAME or KIND/NAME.
    #[arg(required = true, value_name = "RESOURCE")]
    pub resource: Vec<String>,
    /// The Service's port (default: the first container port of the template).
    #[arg(long)]
    pub port: Option<i32>,
    /// The port (number or name) on the pods (default: --port).
    #[arg(long)]
    pub target_port: Option<String>,
    /// The Service's name (default: the resource's).
    #[arg(long)]
    pub name: Option<String>,
    /// ClusterIP (default), NodePort or LoadBalancer.
    #[arg(long = "type", default_value = "ClusterIP")]
    pub service_type: String,
    /// TCP (default), UDP or SCTP.
    #[arg(long, default_value = "TCP")]
    pub protocol: String,
    /// The selector (`k=v,...`) instead of the resource's.
    #[arg(long)]
    pub selector: Option<String>,
    /// Name of the port.
    #[arg(long)]
    pub port_name: Option<String>,
    /// ClientIP for session affinity.
    #[arg(long)]
    pub session_affinity: Option<String>,
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// KIND NAME or KIND/NAME.
    #[arg(required = true, value_name = "RESOURCE")]
    pub resource: Vec<String>,
    /// The new number of replicas.
    #[arg(long, allow_negative_numbers = true)]
    pub replicas: i32,
}

#[derive(Debug, Args)]
pub struct AutoscaleArgs {
    /// KIND NAME or KIND/NAME.
    #[arg(required = true, value_name = "RESOURCE")]
    pub resource: Vec<String>,
    /// The lower limit of replicas (the server's default, 1, when not given).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub min: i32,
    /// The upper limit of replicas.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub max: i32,
    /// The target average CPU utilization (percent of requests); the server's default (80) when not given.
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_percent: Option<i32>,
    /// The autoscaler's name (default: the target's).
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SetCommand {
    /// Update container images: `navctl set image deployment/web web=serve-hostname:2.0`.
    Image(SetImageArgs),
}

#[derive(Debug, Args)]
pub struct SetImageArgs {
    /// KIND/NAME (or KIND NAME), then CONTAINER=IMAGE pairs (`*` for every container).
    #[arg(required = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Wait for a Deployment's rollout to finish, printing its progress.
    Status {
        /// deployment/NAME (or deployment NAME).
        #[arg(required = true, value_name = "RESOURCE")]
        resource: Vec<String>,
        /// Give up after this long (e.g. 2m); default: wait as long as it takes.
        #[arg(long, value_parser = humantime::parse_duration)]
        timeout: Option<std::time::Duration>,
    },
    /// List a Deployment's revisions, or show one with --revision.
    History {
        #[arg(required = true, value_name = "RESOURCE")]
        resource: Vec<String>,
        /// Show the pod template of this revision.
        #[arg(long)]
        revision: Option<i64>,
    },
    /// Roll a Deployment back to its previous revision (or --to-revision).
    Undo {
        #[arg(required = true, value_name = "RESOURCE")]
        resource: Vec<String>,
        /// The revision to go back to (0: the previous one).
        #[arg(long, default_value_t = 0)]
        to_revision: i64,
    },
    /// Pause a Deployment: template changes do not roll out until resumed.
    Pause {
        #[arg(required = true, value_name = "RESOURCE")]
        resource: Vec<String>,
    },
    /// Resume a paused Deployment.
    Resume {
        #[arg(required = true, value_name = "RESOURCE")]
        resource: Vec<String>,
    },
    /// Replace every pod of a Deployment by a rolling update.
    Restart {
        #[arg(required = true, value_name = "RESOURCE")]
        resource: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The node (NAME or node/NAME).
    pub node: String,
}

#[derive(Debug, Args)]
pub struct DrainArgs {
    /// The node (NAME or node/NAME).
    pub node: String,
    /// Leave DaemonSet-managed pods (they would be recreated on the node at once).
    #[arg(long)]
    pub ignore_daemonsets: bool,
    /// Also evict pods with emptyDir volumes (their data is lost).
    #[arg(long)]
    pub delete_emptydir_data: bool,
    /// Also delete pods no controller manages (they are gone for good).
    #[arg(long)]
    pub force: bool,
    /// Delete the pods instead of evicting them: PodDisruptionBudgets are not asked.
    #[arg(long)]
    pub disable_eviction: bool,
    /// Seconds each pod gets to stop (-1: the pod's own terminationGracePeriodSeconds).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// Give up after this long (e.g. 2m); 0: wait as long as it takes.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The pod (NAME or pod/NAME).
    pub pod: String,
    /// The container; default: the pod's kubectl.kubernetes.io/default-container, else its first.
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Stream the log as it grows, until the container exits.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// The log of the previous instance of the container (before its last restart).
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Only the last N lines (-1: all).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// At most this many bytes.
    #[arg(long)]
    pub limit_bytes: Option<i64>,
    /// Include timestamps on each line in the log output.
    #[arg(long)]
    pub timestamps: bool,
    /// Only return logs newer than a relative duration like 5s, 2m, or 3h. Only one of since-time /
    /// since may be used.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    pub since: std::time::Duration,
    /// Only return logs after a specific date (RFC3339). Only one of since-time / since may be used.
    #[arg(long)]
    pub since_time: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The pod (NAME or pod/NAME).
    pub pod: String,
    /// The container; default: the pod's kubectl.kubernetes.io/default-container, else its first.
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Pass standard input to the command.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Allocate a terminal (when standard input is one).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum TopCommand {
    /// CPU and memory of nodes (from the resource metrics API, metrics.k8s.io).
    #[command(alias = "nodes", alias = "no")]
    Node {
        /// One node.
        name: Option<String>,
        /// Label selector.
        #[arg(short = 'l', long)]
        selector: Option<String>,
        /// Sort by `cpu` or `memory` (largest first).
        #[arg(long)]
        sort_by: Option<String>,
        /// Print no header line.
        #[arg(long)]
        no_headers: bool,
    },
    /// CPU and memory of pods (from the resource metrics API, metrics.k8s.io).
    #[command(alias = "pods", alias = "po")]
    Pod {
        /// One pod.
        name: Option<String>,
        /// Pods of all namespaces.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// One line per container.
        #[arg(long)]
        containers: bool,
        /// Label selector.
        #[arg(short = 'l', long)]
        selector: Option<String>,
        /// Field selector (`metadata.name`, `metadata.namespace`).
        #[arg(long)]
        field_selector: Option<String>,
        /// Sort by `cpu` or `memory` (largest first).
        #[arg(long)]
        sort_by: Option<String>,
        /// Print no header line.
        #[arg(long)]
        no_headers: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Show the settings in effect and where each comes from.
    View,
}

#[derive(Debug, Args)]
pub struct FileArgs {
    /// A manifest file, a directory of them, or `-` for standard input. Repeatable.
    #[arg(short = 'f', long = "filename", required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// Process directories given with -f recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse().map_err(|e: anyhow::Error| e.to_string())
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// KIND [NAME...], KIND1,KIND2, or KIND/NAME...
    #[arg(required = true, value_name = "RESOURCE")]
    pub resources: Vec<String>,
    /// List objects in all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Label selector (`app=web,tier!=db`).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Field selector (`metadata.name=web,spec.nodeName=n1`).
    #[arg(long)]
    pub field_selector: Option<String>,
    /// Output format: wide, yaml, json or name.
    #[arg(short = 'o', long, value_parser = parse_format, default_value = "")]
    pub output: Format,
    /// After listing, watch for changes.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Watch for changes without listing first.
    #[arg(long)]
    pub watch_only: bool,
    /// Add a LABELS column.
    #[arg(long)]
    pub show_labels: bool,
    /// Print no header row.
    #[arg(long)]
    pub no_headers: bool,
    /// List in pages of this many objects (0: all at once).
    #[arg(long, default_value_t = 500)]
    pub chunk_size: i64,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// KIND [NAME...] or KIND/NAME...
    #[arg(required = true, value_name = "RESOURCE")]
    pub resources: Vec<String>,
    /// Label selector, when no names are given.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Describe objects in all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

/// `--cascade` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Cascade {
    Background,
    Foreground,
    Orphan,
}

impl Cascade {
    pub fn policy(self) -> &'static str {
        match self {
            Cascade::Background => "Background",
            Cascade::Foreground => "Foreground",
            Cascade::Orphan => "Orphan",
        }
    }
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// KIND NAME..., KIND/NAME..., or KIND with -l / --all.
    #[arg(value_name = "RESOURCE")]
    pub resources: Vec<String>,
    /// Delete the objects of these manifests.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub files: Vec<String>,
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Delete the objects matching this label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Delete every object of the kind in the namespace.
    #[arg(long)]
    pub all: bool,
    /// With --all or -l, in every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Seconds given to the object to terminate gracefully (negative: the object's default).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// Shut down immediately (grace period 1).
    #[arg(long)]
    pub now: bool,
    /// How dependents are deleted.
    #[arg(long, value_enum, default_value = "background")]
    pub cascade: Cascade,
    /// Treat "not found" as success.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// Wait until the objects are gone (`--wait=false` to return at once).
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub wait: bool,
    /// Give up waiting after this long (`30s`, `2m`; 0: no limit).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct MetadataArgs {
    /// KIND NAME... or KIND/NAME..., then changes: `key=value` sets, `key-` removes.
    #[arg(required = true, value_name = "ARGS")]
    pub args: Vec<String>,
    /// Allow changing the value of an existing key.
    #[arg(long)]
    pub overwrite: bool,
    /// Select the objects by label instead of by name.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Every object of the kind in the namespace.
    #[arg(long)]
    pub all: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_kubectl_style_lines() {
        let cli =
            Cli::try_parse_from(["navctl", "get", "po/a", "deploy/b", "-n", "x", "-o", "wide"]).unwrap();
        assert_eq!(cli.namespace.as_deref(), Some("x"));
        let Command::Get(g) = cli.command else { panic!() };
        assert_eq!(g.resources, ["po/a", "deploy/b"]);
        assert_eq!(g.output, Format::Wide);

        let cli = Cli::try_parse_from(["navctl", "delete", "pod", "x", "--wait=false", "--cascade=orphan"])
            .unwrap();
        let Command::Delete(d) = cli.command else { panic!() };
        assert!(!d.wait);
        assert_eq!(d.cascade, Cascade::Orphan);
        assert_eq!(d.grace_period, -1);

        let cli = Cli::try_parse_from(["navctl", "label", "cm", "a", "x=1", "y-", "--overwrite"]).unwrap();
        let Command::Label(l) = cli.command else { panic!() };
        assert_eq!(l.args, ["cm", "a", "x=1", "y-"]);
        assert!(l.overwrite);

        let cli = Cli::try_parse_from(["navctl", "apply", "-f", "a.yaml", "-f", "-", "-R"]).unwrap();
        let Command::Apply(a) = cli.command else { panic!() };
        assert_eq!(a.files, ["a.yaml", "-"]);
    }

    #[test]
    fn usage_errors() {
        for line in [
            &["navctl", "get"][..],
            &["navctl", "get", "pods", "-o", "xml"],
            &["navctl", "apply"],
            &["navctl", "frobnicate"],
            &["navctl", "delete", "pod", "x", "--cascade=sideways"],
        ] {
            let err = Cli::try_parse_from(line).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{line:?}");
        }
    }
}
