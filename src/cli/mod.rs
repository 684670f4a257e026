//! The `berth` command line: Docker Compose's commands, flags and output shapes.
//! Only commands whose machinery exists are offered; the rest arrive with their issues.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::compose::{self, LoadOptions, Loaded};

mod config;
mod image;

pub use config::{ConfigArgs, Format};

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "Compose-style multi-service orchestrator"
)]
pub struct Cli {
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags that pick the project, as `docker compose` has them.
#[derive(Debug, Args)]
pub struct ProjectArgs {
    /// Compose configuration files (repeatable; `-` reads standard input)
    #[arg(short = 'f', long = "file", global = true)]
    pub files: Vec<PathBuf>,
    /// Project name
    #[arg(short = 'p', long = "project-name", global = true)]
    pub project_name: Option<String>,
    /// Alternate working directory (default: the directory of the first compose file)
    #[arg(long = "project-directory", global = true)]
    pub project_directory: Option<PathBuf>,
    /// Alternate environment files (repeatable)
    #[arg(long = "env-file", global = true)]
    pub env_files: Vec<PathBuf>,
    /// Profiles to enable (repeatable)
    #[arg(long = "profile", id = "profile", global = true)]
    pub profiles: Vec<String>,
}

/// Where the engine keeps its state, and how it reaches registries.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Root of berth's persistent state
    #[arg(
        long,
        env = "BERTH_ROOT",
        default_value = "/var/lib/berth",
        global = true
    )]
    pub root: PathBuf,
    /// Root of berth's run-time state (sockets, network namespaces; gone at reboot)
    #[arg(
        long = "run-root",
        env = "BERTH_RUN_ROOT",
        default_value = "/run/berth",
        global = true
    )]
    pub run_root: PathBuf,
    /// Daemon socket (default: `<run-root>/berth.sock`)
    #[arg(long = "host", short = 'H', env = "BERTH_HOST", global = true)]
    pub host: Option<PathBuf>,
    /// Registry (`host[:port]` or CIDR) that may be reached over plain HTTP (repeatable;
    /// loopback registries always may)
    #[arg(
        long = "insecure-registry",
        env = "BERTH_INSECURE_REGISTRIES",
        value_delimiter = ',',
        global = true
    )]
    pub insecure_registries: Vec<String>,
    /// Mirror for Docker Hub, tried before it (repeatable)
    #[arg(
        long = "registry-mirror",
        env = "BERTH_REGISTRY_MIRRORS",
        value_delimiter = ',',
        global = true
    )]
    pub registry_mirrors: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pull images from a registry (a project's service images when no image is named)
    Pull(image::PullArgs),
    /// Upload an image to its registry
    Push(image::PushArgs),
    /// List images
    Images(image::ImagesArgs),
    /// Remove images
    Rmi(image::RmiArgs),
    /// Load images from a tar archive (`docker save` output or an OCI layout)
    Load(image::LoadArgs),
    /// Save images to a tar archive (`docker load` reads it)
    Save(image::SaveArgs),
    /// Give an image another name
    Tag(image::TagArgs),
    /// Log in to a registry
    Login(image::LoginArgs),
    /// Log out from a registry
    Logout(image::LogoutArgs),
    /// Parse, resolve and render the compose file in canonical format
    Config(ConfigArgs),
    /// Show the berth version
    Version,
    /// Run the engine daemon (the CLI starts one itself when its socket is absent)
    Daemon,
    /// One container's monitor, re-exec'd by the daemon
    #[command(hide = true, subcommand)]
    Shim(ShimCommand),
}

#[derive(Debug, Subcommand)]
pub enum ShimCommand {
    /// Double-fork, start the container described by `<bundle>/spec.json`, monitor it
    Start {
        #[arg(long)]
        bundle: PathBuf,
    },
    /// Run the container in the foreground with this process's stdio
    Run {
        #[arg(long)]
        bundle: PathBuf,
    },
    /// Run a process inside the running container
    Exec {
        #[arg(long)]
        bundle: PathBuf,
        #[arg(long)]
        spec: String,
    },
}

impl EngineArgs {
    /// The daemon socket this CLI talks to.
    pub fn socket(&self) -> PathBuf {
        self.host
            .clone()
            .unwrap_or_else(|| self.run_root.join("berth.sock"))
    }

    /// The daemon this CLI talks to, and how to start it when none runs.
    pub fn daemon_target(&self) -> crate::api::autostart::Target {
        let mut daemon_args = Vec::new();
        for r in &self.insecure_registries {
            daemon_args.push("--insecure-registry".into());
            daemon_args.push(r.into());
        }
        for m in &self.registry_mirrors {
            daemon_args.push("--registry-mirror".into());
            daemon_args.push(m.into());
        }
        crate::api::autostart::Target {
            socket: self.socket(),
            root: self.root.clone(),
            run_root: self.run_root.clone(),
            daemon_args,
            // A socket named by the user is trusted whatever root its daemon serves.
            check_root: self.host.is_none(),
        }
    }
}

/// A client of the daemon, started first when none runs (the embedded default).
pub(crate) async fn connect(engine: &EngineArgs) -> Result<crate::api::Client, String> {
    crate::api::autostart::connect_or_start(&engine.daemon_target())
        .await
        .map_err(|e| e.to_string())
}

/// Run the CLI; returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Version => {
            println!("berth version {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Config(args) => done(config::run(&cli.project, &args)),
        Command::Pull(args) => done(image::pull(&cli.engine, &cli.project, &args)),
        Command::Push(args) => done(image::push(&cli.engine, &args)),
        Command::Images(args) => done(image::images(&cli.engine, &args)),
        Command::Rmi(args) => done(image::rmi(&cli.engine, &args)),
        Command::Load(args) => done(image::load(&cli.engine, &args)),
        Command::Save(args) => done(image::save(&cli.engine, &args)),
        Command::Tag(args) => done(image::tag(&cli.engine, &args)),
        Command::Login(args) => done(image::login(&cli.engine, &args)),
        Command::Logout(args) => done(image::logout(&cli.engine, &args)),
        Command::Daemon => crate::api::run_daemon(crate::api::DaemonOptions {
            root: cli.engine.root.clone(),
            run_root: cli.engine.run_root.clone(),
            socket: cli.engine.socket(),
            registry: image::registry_config(&cli.engine),
        }),
        Command::Shim(ShimCommand::Start { bundle }) => crate::engine::shim::main_start(&bundle),
        Command::Shim(ShimCommand::Run { bundle }) => crate::engine::shim::main_run(&bundle),
        Command::Shim(ShimCommand::Exec { bundle, spec }) => {
            crate::engine::shim::main_exec(&bundle, &spec)
        }
    }
}

fn done(r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

pub(crate) fn load(
    project: &ProjectArgs,
    tweak: impl FnOnce(&mut LoadOptions),
) -> Result<Loaded, String> {
    let mut opts = LoadOptions::from_process().map_err(|e| format!("current directory: {e}"))?;
    opts.files = project.files.clone();
    opts.project_name = project.project_name.clone();
    opts.project_directory = project.project_directory.clone();
    opts.env_files = project.env_files.clone();
    opts.profiles = project.profiles.clone();
    if opts.files.iter().any(|f| f.as_os_str() == "-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("reading standard input: {e}"))?;
        opts.stdin = Some(s);
    }
    tweak(&mut opts);
    let loaded = compose::load(&opts).map_err(|e| e.to_string())?;
    let color = std::io::stderr().is_terminal();
    for w in &loaded.warnings {
        if color {
            eprintln!("\x1b[33mWARN\x1b[0m[0000] {w}");
        } else {
            eprintln!("WARN[0000] {w}");
        }
    }
    Ok(loaded)
}
