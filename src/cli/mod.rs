//! The `berth` command line: Docker Compose's commands, flags and output shapes.
//! Only commands whose machinery exists are offered; the rest arrive with their issues.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::compose::{self, LoadOptions, Loaded};

mod config;

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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse, resolve and render the compose file in canonical format
    Config(ConfigArgs),
    /// Show the berth version
    Version,
}

/// Run the CLI; returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Version => {
            println!("berth version {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Config(args) => match config::run(&cli.project, &args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        },
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
