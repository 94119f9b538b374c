//! The `kappalog` command line: arguments (clap) and what each command does. The binary only
//! calls [`main`]. `serve` runs the broker; `produce`, `consume`, `topics`, `groups`, `views` talk to one
//! over HTTP (`--broker`); `dump` reads segment files offline.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::broker::server::{self, FileConfig, ServeConfig};

mod client;
mod describe;
mod dump;
mod output;
mod views;

pub use output::OutputFormat;

pub use views::{progress_line, ViewsCommand, REBUILD_POLL_MS, REBUILD_TIMEOUT_S_DEFAULT};

/// Exit code for a usage or request error.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code of `dump` when a segment is corrupt.
pub const EXIT_CORRUPT: i32 = 3;

#[derive(Debug, Parser)]
#[command(name = "kappalog", version, about = "An embedded, log-structured event store with replay, and its broker")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker (HTTP API in the Confluent REST Proxy v2 convention).
    Serve(ServeArgs),
    /// Produce one record per line of standard input.
    Produce(ProduceArgs),
    /// Print records of a topic, one per line.
    Consume(ConsumeArgs),
    /// List, create, describe or delete topics.
    Topics {
        #[command(subcommand)]
        command: TopicsCommand,
        #[arg(long, env = "KAPPALOG_BROKER", default_value = "http://127.0.0.1:8082", global = true)]
        broker: String,
    },
    /// List, describe consumer groups, or reset their offsets.
    Groups {
        #[command(subcommand)]
        command: GroupsCommand,
        #[arg(long, env = "KAPPALOG_BROKER", default_value = "http://127.0.0.1:8082", global = true)]
        broker: String,
    },
    /// Create, list, query, rebuild or delete stream views.
    Views {
        #[command(subcommand)]
        command: ViewsCommand,
        #[arg(long, env = "KAPPALOG_BROKER", default_value = "http://127.0.0.1:8082", global = true)]
        broker: String,
    },
    /// Print a segment file's batches, verifying every CRC; exits 3 on corruption.
    Dump {
        /// A `.log` segment file, or a partition directory (every segment in it).
        path: PathBuf,
        /// Print every record too.
        #[arg(long)]
        records: bool,
    },
    /// Rewrite a data directory of an older format version into the current one, crash-safely
    /// (run it again after an interruption). The broker must not be running on it.
    Migrate {
        /// The data directory.
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The data directory (default ./kappalog-data).
    #[arg(long, env = "KAPPALOG_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The address to listen on (default 127.0.0.1:8082; port 0 picks a free one).
    #[arg(long, env = "KAPPALOG_LISTEN")]
    pub listen: Option<String>,
    /// A TOML config file (keys: data_dir, listen, body_bytes_max, auto_create_topics,
    /// auto_create_partitions, consumer_instance_timeout_ms, advertised_uri, cleaner_interval_ms,
    /// commit_threads, kafka_listen, kafka_advertised, kafka_request_bytes_max,
    /// kafka_connections_max_idle_ms, ...).
    #[arg(long, env = "KAPPALOG_CONFIG")]
    pub config: Option<PathBuf>,
    /// Create unknown topics on produce.
    #[arg(long, env = "KAPPALOG_AUTO_CREATE_TOPICS")]
    pub auto_create_topics: Option<bool>,
    /// Largest request body, in bytes.
    #[arg(long, env = "KAPPALOG_BODY_BYTES_MAX")]
    pub body_bytes_max: Option<usize>,
    /// Idle time after which a consumer instance is removed, in ms.
    #[arg(long, env = "KAPPALOG_CONSUMER_INSTANCE_TIMEOUT_MS")]
    pub consumer_instance_timeout_ms: Option<u64>,
    /// How often the background cleaner runs retention and compaction, in ms (0 disables it).
    #[arg(long, env = "KAPPALOG_CLEANER_INTERVAL_MS")]
    pub cleaner_interval_ms: Option<u64>,
    /// Group-commit threads of the store, 1..=16 (default 1).
    #[arg(long, env = "KAPPALOG_COMMIT_THREADS")]
    pub commit_threads: Option<usize>,
    /// The address to listen on for Kafka clients (default 127.0.0.1:9092; `off` disables it).
    #[arg(long, env = "KAPPALOG_KAFKA_LISTEN")]
    pub kafka_listen: Option<String>,
    /// The `host:port` Kafka clients are told to connect to (default: the Kafka listen address).
    #[arg(long, env = "KAPPALOG_KAFKA_ADVERTISED")]
    pub kafka_advertised: Option<String>,
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    #[arg(short, long)]
    pub topic: String,
    /// Split each line at the first occurrence into key and value.
    #[arg(long)]
    pub key_separator: Option<String>,
    #[arg(long)]
    pub partition: Option<u32>,
    #[arg(long, env = "KAPPALOG_BROKER", default_value = "http://127.0.0.1:8082")]
    pub broker: String,
}

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[arg(short, long)]
    pub topic: String,
    /// beginning, end, or an offset (without --group: per partition).
    #[arg(long, default_value = "beginning")]
    pub from: String,
    /// Consume as a member of this group (committing as it goes).
    #[arg(long)]
    pub group: Option<String>,
    /// Keep waiting for new records instead of stopping at the end.
    #[arg(long)]
    pub follow: bool,
    /// Print keys too, before this separator.
    #[arg(long)]
    pub key_separator: Option<String>,
    /// Start each line with the record's headers and a tab: `name:value` joined by `,`, a null
    /// value as `name:null`, `NO_HEADERS` for none (as Kafka's console consumer prints them).
    #[arg(long)]
    pub print_headers: bool,
    #[arg(long, env = "KAPPALOG_BROKER", default_value = "http://127.0.0.1:8082")]
    pub broker: String,
}

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    List,
    Create {
        name: String,
        #[arg(short, long, default_value_t = 1)]
        partitions: u32,
        /// key=value with Kafka's config names (repeatable), e.g. retention.ms=60000.
        #[arg(short, long)]
        config: Vec<String>,
    },
    /// Partitions with their log start, high watermark, segments and bytes, and the topic's configs.
    Describe {
        name: String,
        /// `table` for people, `json` (the broker's documents) for scripts.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
    },
    Delete {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    List,
    /// State, generation, and per partition: committed offset, log end, lag and owner.
    Describe {
        group: String,
        /// `table` for people, `json` (the broker's document) for scripts.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
    },
    /// Compute (default: --dry-run) or apply (--execute) new committed offsets.
    ResetOffsets(ResetArgs),
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    pub group: String,
    #[arg(short, long)]
    pub topic: String,
    /// Only these partitions (repeatable); default all.
    #[arg(long)]
    pub partition: Vec<u32>,
    #[arg(long, group = "strategy")]
    pub to_earliest: bool,
    #[arg(long, group = "strategy")]
    pub to_latest: bool,
    #[arg(long, group = "strategy")]
    pub to_offset: Option<i64>,
    /// Milliseconds since the epoch, or RFC 3339-like `YYYY-MM-DDTHH:MM:SS[Z]` (UTC).
    #[arg(long, group = "strategy")]
    pub to_datetime: Option<String>,
    #[arg(long, group = "strategy", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
    /// Apply the plan (the default is a dry run).
    #[arg(long)]
    pub execute: bool,
    /// Apply even while the group has live instances.
    #[arg(long)]
    pub force: bool,
}

impl ServeArgs {
    /// Flags and environment over the config file over the defaults.
    pub fn resolve(self) -> Result<ServeConfig, server::ServeError> {
        let mut cfg = ServeConfig::default();
        if let Some(path) = &self.config {
            cfg = cfg.with_file(FileConfig::load(path)?);
        }
        cfg = cfg.with_file(FileConfig {
            data_dir: self.data_dir,
            listen: self.listen,
            body_bytes_max: self.body_bytes_max,
            auto_create_topics: self.auto_create_topics,
            auto_create_partitions: None,
            consumer_instance_timeout_ms: self.consumer_instance_timeout_ms,
            advertised_uri: None,
            cleaner_interval_ms: self.cleaner_interval_ms,
            commit_threads: self.commit_threads,
            kafka_listen: self.kafka_listen,
            kafka_advertised: self.kafka_advertised,
            ..FileConfig::default()
        });
        Ok(cfg)
    }
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// What `serve` prints when it cannot run: the error, and for a locked data directory the lock
/// file and the likely cause (another broker on the same directory).
fn serve_error_message(e: &server::ServeError) -> String {
    match e {
        server::ServeError::Store(crate::Error::Locked { path }) => format!(
            "data directory {} is locked: its lock file {} is held by another process (another kappalog serve, \
             or a program embedding kappalog, on the same directory); stop it, or pass a different --data-dir",
            path.display(),
            path.join(crate::store::LOCK_FILE).display()
        ),
        _ => e.to_string(),
    }
}

/// Parses the process arguments and runs the command; returns the exit code.
pub fn main() -> i32 {
    run(Cli::parse())
}

/// Runs a parsed command; returns the exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Serve(args) => {
            init_tracing("info");
            let result = args.resolve().and_then(server::serve);
            match result {
                Ok(()) => 0,
                Err(e) => {
                    output::warn(format!("kappalog serve: {}", serve_error_message(&e)));
                    EXIT_FAILURE
                }
            }
        }
        Command::Dump { path, records } => {
            init_tracing("warn");
            dump::run(&path, records)
        }
        Command::Migrate { dir } => {
            init_tracing("warn");
            migrate(&dir)
        }
        command => {
            init_tracing("warn");
            match client::run(command) {
                Ok(()) | Err(output::CliError::BrokenPipe) => 0,
                Err(e) => {
                    output::warn(format!("kappalog: {e}"));
                    EXIT_FAILURE
                }
            }
        }
    }
}

fn migrate(dir: &std::path::Path) -> i32 {
    match crate::log::migrate::migrate_store(dir) {
        Ok(r) if r.from_version == crate::limits::FORMAT_VERSION => {
            println!("{} is already format version {}: nothing to do", dir.display(), r.from_version);
            0
        }
        Ok(r) => {
            for (path, position, bytes) in &r.torn_tails {
                output::warn(format!("cut a torn tail of {bytes} bytes at byte {position} of {}", path.display()));
            }
            println!(
                "migrated {} from format version {} to {}: {} partitions, {} batches, {} records rewritten",
                dir.display(),
                r.from_version,
                crate::limits::FORMAT_VERSION,
                r.partitions,
                r.batches,
                r.records
            );
            0
        }
        Err(e @ crate::Error::Corrupted { .. }) => {
            output::warn(format!("kappalog migrate: {e}; nothing of that partition was changed"));
            EXIT_CORRUPT
        }
        Err(e) => {
            output::warn(format!("kappalog migrate: {e}"));
            EXIT_FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_config_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kappalog.toml");
        std::fs::write(&path, "data_dir = \"/from/file\"\nlisten = \"127.0.0.1:1\"\nauto_create_topics = true\n")
            .unwrap();
        let args = ServeArgs {
            data_dir: None,
            listen: Some("127.0.0.1:2".into()),
            config: Some(path.clone()),
            auto_create_topics: None,
            body_bytes_max: Some(10),
            consumer_instance_timeout_ms: None,
            cleaner_interval_ms: None,
            commit_threads: None,
            kafka_listen: None,
            kafka_advertised: None,
        };
        let cfg = args.resolve().unwrap();
        assert_eq!(cfg.data_dir, std::path::PathBuf::from("/from/file"));
        assert_eq!(cfg.listen, "127.0.0.1:2");
        assert!(cfg.http.auto_create_topics);
        assert_eq!(cfg.http.body_bytes_max, 10);

        std::fs::write(&path, "unknown_key = 1\n").unwrap();
        let args = ServeArgs {
            data_dir: None,
            listen: None,
            config: Some(path),
            auto_create_topics: None,
            body_bytes_max: None,
            consumer_instance_timeout_ms: None,
            cleaner_interval_ms: None,
            commit_threads: None,
            kafka_listen: None,
            kafka_advertised: None,
        };
        let err = args.resolve().unwrap_err().to_string();
        assert!(err.contains("unknown_key"), "{err}");

        let defaults = ServeConfig::default();
        assert_eq!(defaults.data_dir, std::path::PathBuf::from(server::DATA_DIR_DEFAULT));
        assert_eq!(defaults.listen, server::LISTEN_DEFAULT);
    }

    #[test]
    fn commit_threads_from_the_file_or_the_flag_and_checked_against_its_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kappalog.toml");
        let args = |file: &str, flag: Option<usize>| {
            std::fs::write(&path, file).unwrap();
            ServeArgs {
                data_dir: None,
                listen: None,
                config: Some(path.clone()),
                auto_create_topics: None,
                body_bytes_max: None,
                consumer_instance_timeout_ms: None,
                cleaner_interval_ms: None,
                commit_threads: flag,
                kafka_listen: None,
                kafka_advertised: None,
            }
            .resolve()
            .unwrap()
        };
        assert_eq!(ServeConfig::default().commit_threads, crate::log::COMMIT_THREADS);
        assert_eq!(args("commit_threads = 3\n", None).commit_threads, 3);
        assert_eq!(args("commit_threads = 3\n", Some(2)).commit_threads, 2);
        args("", Some(crate::log::COMMIT_THREADS_MAX)).validate().unwrap();
        for bad in [0, crate::log::COMMIT_THREADS_MAX + 1] {
            let err = args("", Some(bad)).validate().unwrap_err().to_string();
            assert!(err.contains("commit_threads") && err.contains("outside 1..=16"), "{bad}: {err}");
        }
    }
}
