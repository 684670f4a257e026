//! Image commands: `pull`, `push`, `images`, `rmi`, `load`, `save`, `tag`, `login`, `logout`,
//! with Docker's flags and output shapes.

use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use bollard_stubs::models::{CreateImageInfo, ImageSummary};
use clap::{Args, ValueEnum};
use futures_util::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{EngineArgs, ProjectArgs};
use crate::api::{Client, ClientError};
use crate::engine::image::imagespec::Platform;
use crate::engine::image::reference::Reference;
use crate::engine::image::registry::RegistryConfig;
use crate::engine::image::service::{ImageService, PullEvent, PullProgress};

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Images (`redis`, `host:5000/app:1`, `x@sha256:…`) or, in a project, service names;
    /// none pulls every service's image
    pub names: Vec<String>,
    /// Platform to pull (`os/arch[/variant]`); default: this machine's
    #[arg(long)]
    pub platform: Option<String>,
    /// Print nothing but errors
    #[arg(short, long)]
    pub quiet: bool,
    /// Pull what can be pulled and report the rest (project pulls)
    #[arg(long)]
    pub ignore_pull_failures: bool,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The image to push, named with its registry (`localhost:5000/app:1`)
    pub name: String,
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ImagesFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only images of this repository (`busybox`, `localhost:5000/app`)
    pub repository: Option<String>,
    /// Only print image ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: ImagesFormat,
    /// Show full image ids
    #[arg(long)]
    pub no_trunc: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Images to remove (names or ids)
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Remove even if the image has several names or a container uses it (no `-f`: that
    /// is the global compose-file flag here)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from this tar archive instead of standard input
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Images to save
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Write to this file instead of standard output
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Registry (default: Docker Hub)
    pub server: Option<String>,
    #[arg(short, long)]
    pub username: Option<String>,
    /// The password (`-p` is the global project-name flag here)
    #[arg(long)]
    pub password: Option<String>,
    /// Read the password from standard input
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Registry (default: Docker Hub)
    pub server: Option<String>,
}

const DOCKER_HUB: &str = "docker.io";

pub(super) fn service(engine: &EngineArgs) -> Result<ImageService, String> {
    ImageService::open(&engine.root, registry_config(engine)).map_err(|e| e.to_string())
}

pub(super) fn registry_config(engine: &EngineArgs) -> RegistryConfig {
    RegistryConfig {
        insecure_registries: engine.insecure_registries.clone(),
        mirrors: engine
            .registry_mirrors
            .iter()
            .map(|m| (DOCKER_HUB.to_string(), vec![m.clone()]))
            .collect(),
        ..RegistryConfig::default()
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the async runtime: {e}"))
}

fn parse_ref(s: &str) -> Result<Reference, String> {
    Reference::parse(s).map_err(|e| e.to_string())
}

pub(super) fn pull(
    engine: &EngineArgs,
    project: &ProjectArgs,
    args: &PullArgs,
) -> Result<(), String> {
    // Checked here so a typo fails before a daemon is started.
    if let Some(p) = &args.platform {
        Platform::parse(p).map_err(|e| e.to_string())?;
    }
    let images = pull_targets(project, &args.names)?;
    let rt = runtime()?;
    let progress = Progress::new(args.quiet);
    let results = rt.block_on(async {
        let client = super::connect(engine).await?;
        let count = images.len();
        let jobs = images.iter().map(|(label, reference)| {
            let client = &client;
            let progress = &progress;
            async move {
                if !args.quiet && count == 1 {
                    progress.line(&format!(
                        "{}: Pulling from {}",
                        reference.tag.as_deref().unwrap_or("latest"),
                        reference.familiar_name()
                    ));
                }
                let pulled = pull_one(client, reference, args.platform.as_deref(), progress).await;
                (label, reference, pulled)
            }
        });
        Ok::<_, String>(futures_util::future::join_all(jobs).await)
    });
    progress.finish();
    let mut failed = Vec::new();
    for (label, reference, result) in results? {
        match result {
            Ok(pulled) if !args.quiet => {
                println!("Digest: {}", pulled.digest);
                let status = if pulled.downloaded {
                    "Downloaded newer image for"
                } else {
                    "Image is up to date for"
                };
                println!("Status: {status} {}", reference.familiar());
                println!("{reference}");
            }
            Ok(_) => {}
            Err(e) => {
                let msg = match label {
                    Some(service) => format!("service {service:?}: {e}"),
                    None => e.to_string(),
                };
                eprintln!("Error: {msg}");
                failed.push(msg);
            }
        }
    }
    if failed.is_empty() || args.ignore_pull_failures {
        Ok(())
    } else {
        Err(format!("{} pull(s) failed", failed.len()))
    }
}

/// What a pull through the daemon ended with.
struct PullOutcome {
    digest: String,
    downloaded: bool,
}

/// One image through the daemon: its progress messages drive the bars; the closing
/// `Digest:` and `Status:` lines are the result.
async fn pull_one(
    client: &Client,
    reference: &Reference,
    platform: Option<&str>,
    progress: &Progress,
) -> Result<PullOutcome, ClientError> {
    let mut messages = client.pull(reference, platform).await?;
    let mut digest = None;
    let mut downloaded = true;
    while let Some(message) = messages.next().await {
        let message = message?;
        let status = message.status.as_deref().unwrap_or_default();
        if let Some(d) = status.strip_prefix("Digest: ") {
            digest = Some(d.to_string());
        } else if let Some(s) = status.strip_prefix("Status: ") {
            downloaded = s.starts_with("Downloaded");
        } else {
            progress.message(&message);
        }
    }
    match digest {
        Some(digest) => Ok(PullOutcome { digest, downloaded }),
        None => Err(ClientError::Remote(format!(
            "the daemon's pull of {reference} ended without a result"
        ))),
    }
}

/// What to pull: explicit images, named services of the project, or every service image.
fn pull_targets(
    project: &ProjectArgs,
    names: &[String],
) -> Result<Vec<(Option<String>, Reference)>, String> {
    let loaded = if names.is_empty() || names.iter().any(|n| !n.contains(['/', ':', '@'])) {
        // A project is optional when every name is an image.
        match super::load(project, |_| {}) {
            Ok(l) => Some(l),
            Err(e) if names.is_empty() => return Err(e),
            Err(_) => None,
        }
    } else {
        None
    };
    let service_images: HashMap<String, Option<String>> = loaded
        .as_ref()
        .and_then(|l| l.project.as_ref())
        .map(|p| {
            p.services
                .iter()
                .map(|(name, s)| {
                    (
                        name.clone(),
                        Some(s.image.clone()).filter(|i| !i.is_empty()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    if names.is_empty() {
        let mut seen = std::collections::BTreeSet::new();
        let mut entries: Vec<_> = service_images.iter().collect();
        entries.sort();
        for (service, image) in entries {
            // Services built locally have nothing to pull.
            if let Some(image) = image {
                if seen.insert(image.clone()) {
                    out.push((Some(service.clone()), parse_ref(image)?));
                }
            }
        }
        return Ok(out);
    }
    for n in names {
        match service_images.get(n) {
            Some(Some(image)) => out.push((Some(n.clone()), parse_ref(image)?)),
            Some(None) => {}
            None => out.push((None, parse_ref(n)?)),
        }
    }
    Ok(out)
}

pub(super) fn push(engine: &EngineArgs, args: &PushArgs) -> Result<(), String> {
    let reference = parse_ref(&args.name)?;
    let svc = service(engine)?;
    let rt = runtime()?;
    let mut progress = Progress::new(args.quiet);
    progress.pushing = true;
    if !args.quiet {
        progress.line(&format!(
            "The push refers to repository [{}]",
            reference.repository()
        ));
    }
    let pushed = rt.block_on(svc.push(&reference, &progress));
    progress.finish();
    let digest = pushed.map_err(|e| e.to_string())?;
    if !args.quiet {
        let size = svc
            .content()
            .size(&digest)
            .map(|s| s.to_string())
            .unwrap_or_default();
        println!(
            "{}: digest: {digest} size: {size}",
            reference.tag.as_deref().unwrap_or("latest")
        );
    }
    Ok(())
}

pub(super) fn images(engine: &EngineArgs, args: &ImagesArgs) -> Result<(), String> {
    let filter = match &args.repository {
        Some(r) => Some(parse_ref(r)?),
        None => None,
    };
    let rt = runtime()?;
    let mut summaries = rt.block_on(async {
        let client = super::connect(engine).await?;
        client
            .list_images(&HashMap::new())
            .await
            .map_err(|e| e.to_string())
    })?;
    summaries.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    let now = SystemTime::now();
    let mut rows: Vec<Row> = Vec::new();
    for r in &summaries {
        for row in rows_of(r, now) {
            let keep = match &filter {
                None => true,
                Some(f) => {
                    row.full_repo == f.repository()
                        && (args.repository.as_deref().is_some_and(|s| !s.contains(':'))
                            || f.tag.as_deref() == Some(row.tag.as_str()))
                }
            };
            if keep {
                rows.push(row);
            }
        }
    }
    let mut out = String::new();
    if args.quiet {
        let mut seen = std::collections::BTreeSet::new();
        for row in &rows {
            let id = id_text(&row.id, args.no_trunc);
            if seen.insert(id.clone()) {
                out.push_str(&id);
                out.push('\n');
            }
        }
    } else if args.format == ImagesFormat::Json {
        for row in &rows {
            let v = serde_json::json!({
                "Containers": "N/A",
                "CreatedAt": row.created_at,
                "CreatedSince": row.created_since,
                "Digest": row.digest,
                "ID": id_text(&row.id, args.no_trunc),
                "Repository": row.repo,
                "SharedSize": "N/A",
                "Size": row.size,
                "Tag": row.tag,
                "UniqueSize": "N/A",
                "VirtualSize": row.size,
            });
            out.push_str(&v.to_string());
            out.push('\n');
        }
    } else {
        let mut table = vec![{
            let mut h = vec!["REPOSITORY", "TAG"];
            if args.digests {
                h.push("DIGEST");
            }
            h.extend(["IMAGE ID", "CREATED", "SIZE"]);
            h.into_iter().map(String::from).collect::<Vec<_>>()
        }];
        for row in &rows {
            let mut cells = vec![row.repo.clone(), row.tag.clone()];
            if args.digests {
                cells.push(row.digest.clone());
            }
            cells.extend([
                id_text(&row.id, args.no_trunc),
                row.created_since.clone(),
                row.size.clone(),
            ]);
            table.push(cells);
        }
        out = render_table(&table);
    }
    print!("{out}");
    Ok(())
}

struct Row {
    repo: String,
    full_repo: String,
    tag: String,
    digest: String,
    id: String,
    created_at: String,
    created_since: String,
    size: String,
}

/// Table rows of one image, from the daemon's summary (names there are familiar:
/// `busybox:latest`, `busybox@sha256:…`).
fn rows_of(r: &ImageSummary, now: SystemTime) -> Vec<Row> {
    let created = u64::try_from(r.created)
        .ok()
        .filter(|c| *c > 0)
        .map(|c| SystemTime::UNIX_EPOCH + Duration::from_secs(c));
    let created_since = created
        .map(|t| {
            format!(
                "{} ago",
                human_duration(now.duration_since(t).unwrap_or_default())
            )
        })
        .unwrap_or_else(|| "N/A".into());
    let created_at = chrono::DateTime::from_timestamp(r.created, 0)
        .filter(|_| created.is_some())
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    let digests: Vec<(String, String)> = r
        .repo_digests
        .iter()
        .filter_map(|d| {
            let (name, digest) = d.split_once('@')?;
            let full = Reference::parse_named(name).ok()?.repository();
            Some((full, digest.to_string()))
        })
        .collect();
    let digest_of = |repo: &str| {
        digests
            .iter()
            .find(|(n, _)| n == repo)
            .map_or("<none>", |(_, d)| d.as_str())
            .to_string()
    };
    let size = human_size(u64::try_from(r.size).unwrap_or(0));
    let base = |repo: String, full: String, tag: String| Row {
        digest: digest_of(&full),
        repo,
        full_repo: full,
        tag,
        id: r.id.clone(),
        created_at: created_at.clone(),
        created_since: created_since.clone(),
        size: size.clone(),
    };
    let mut rows = Vec::new();
    for t in &r.repo_tags {
        if let Ok(reference) = Reference::parse(t) {
            rows.push(base(
                reference.familiar_name(),
                reference.repository(),
                reference.tag.clone().unwrap_or_else(|| "latest".into()),
            ));
        }
    }
    if rows.is_empty() {
        // Pulled by digest only, or untagged: Docker shows the repository with tag <none>.
        match digests.first() {
            Some((full, _)) => {
                let familiar = Reference::parse_named(full)
                    .map(|x| x.familiar_name())
                    .unwrap_or_else(|_| full.clone());
                rows.push(base(familiar, full.clone(), "<none>".into()));
            }
            None => rows.push(base("<none>".into(), String::new(), "<none>".into())),
        }
    }
    rows
}

/// A stored full name as Docker prints it (`docker.io/library/busybox:1` → `busybox:1`).
fn familiar(name: &str) -> String {
    Reference::parse(name).map_or_else(|_| name.to_string(), |r| r.familiar())
}

fn id_text(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.trim_start_matches("sha256:").chars().take(12).collect()
    }
}

/// Docker's table writer: columns padded to the widest cell plus three spaces.
fn render_table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < cols {
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 3));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// go-units HumanSize: decimal units, four significant digits at most.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes as f64;
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    let text = format!("{size:.4}");
    // %.4g: four significant digits, trailing zeros dropped.
    let digits_before = text.split('.').next().map_or(1, str::len);
    let decimals = 4usize.saturating_sub(digits_before);
    let mut t = format!("{size:.decimals$}");
    if t.contains('.') {
        t = t.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{t}{}", UNITS[i])
}

/// go-units HumanDuration.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let hours = secs / 3600;
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s / 60 == 1 => "About a minute".into(),
        s if s < 3600 => format!("{} minutes", s / 60),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

pub(super) fn rmi(engine: &EngineArgs, args: &RmiArgs) -> Result<(), String> {
    let rt = runtime()?;
    let failed = rt.block_on(async {
        let client = super::connect(engine).await?;
        let mut failed = 0;
        for image in &args.images {
            match client.remove_image(image, args.force).await {
                Ok(items) => {
                    for item in &items {
                        if let Some(u) = &item.untagged {
                            println!("Untagged: {}", familiar(u));
                        }
                    }
                    for item in &items {
                        if let Some(d) = &item.deleted {
                            println!("Deleted: {d}");
                        }
                    }
                }
                Err(e) => {
                    eprintln!("Error response from daemon: {e}");
                    failed += 1;
                }
            }
        }
        Ok::<_, String>(failed)
    })?;
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} image(s) could not be removed"))
    }
}

pub(super) fn load(engine: &EngineArgs, args: &LoadArgs) -> Result<(), String> {
    let svc = service(engine)?;
    let input: Box<dyn Read> = match &args.input {
        Some(path) => {
            Box::new(std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?)
        }
        None => {
            if std::io::stdin().is_terminal() {
                return Err("requested load from stdin, but stdin is empty".into());
            }
            Box::new(std::io::stdin().lock())
        }
    };
    let loaded = svc.load(input).map_err(|e| e.to_string())?;
    if !args.quiet {
        for r in &loaded {
            if r.repo_tags.is_empty() {
                println!("Loaded image ID: {}", r.id);
            }
            for t in &r.repo_tags {
                println!("Loaded image: {}", familiar(t));
            }
        }
    }
    Ok(())
}

pub(super) fn save(engine: &EngineArgs, args: &SaveArgs) -> Result<(), String> {
    let svc = service(engine)?;
    match &args.output {
        Some(path) => {
            // Written next to the target and renamed: a failed save leaves no torn file.
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
            let tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(std::path::Path::new(".")))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let file = svc
                .save(&args.images, std::io::BufWriter::new(tmp))
                .map_err(|e| e.to_string())?;
            let tmp = file
                .into_inner()
                .map_err(|e| format!("{}: {}", path.display(), e.error()))?;
            tmp.persist(path)
                .map_err(|e| format!("{}: {}", path.display(), e.error))?;
        }
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                return Err(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
                );
            }
            let mut out = svc
                .save(&args.images, std::io::BufWriter::new(stdout.lock()))
                .map_err(|e| e.to_string())?;
            out.flush().map_err(|e| format!("writing output: {e}"))?;
        }
    }
    Ok(())
}

pub(super) fn tag(engine: &EngineArgs, args: &TagArgs) -> Result<(), String> {
    service(engine)?
        .tag(&args.source, &args.target)
        .map_err(|e| e.to_string())
}

pub(super) fn login(engine: &EngineArgs, args: &LoginArgs) -> Result<(), String> {
    let server = args
        .server
        .clone()
        .unwrap_or_else(|| DOCKER_HUB.to_string());
    let username = match &args.username {
        Some(u) => u.clone(),
        None => {
            return Err("login needs --username (interactive prompts are not supported)".into())
        }
    };
    let password = match (&args.password, args.password_stdin) {
        (Some(_), true) => {
            return Err("--password and --password-stdin are mutually exclusive".into())
        }
        (Some(p), false) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p.clone()
        }
        (None, true) => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("reading the password from stdin: {e}"))?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => return Err("login needs --password-stdin or --password".into()),
    };
    let svc = service(engine)?;
    let rt = runtime()?;
    rt.block_on(svc.registry().login(&server, &username, &password))
        .map_err(|e| e.to_string())?;
    println!("Login Succeeded");
    Ok(())
}

pub(super) fn logout(engine: &EngineArgs, args: &LogoutArgs) -> Result<(), String> {
    let server = args
        .server
        .clone()
        .unwrap_or_else(|| DOCKER_HUB.to_string());
    let svc = service(engine)?;
    let removed = svc.registry().logout(&server).map_err(|e| e.to_string())?;
    if removed {
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(())
}

/// Pull/push progress: bars per layer on a terminal (like Docker), plain lines otherwise.
struct Progress {
    quiet: bool,
    /// Wording: pushes say "Layer already exists" where pulls say "Already exists".
    pushing: bool,
    bars: Option<MultiProgress>,
    state: Mutex<ProgressState>,
}

#[derive(Default)]
struct ProgressState {
    bars: HashMap<String, ProgressBar>,
    /// Last plain-text status per layer, so repeated events print once.
    said: HashMap<String, &'static str>,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        let tty = std::io::stderr().is_terminal() && !quiet;
        Progress {
            quiet,
            pushing: false,
            bars: tty.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            state: Mutex::new(ProgressState::default()),
        }
    }

    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.bars {
            Some(m) => {
                let _ = m.println(text);
            }
            None => println!("{text}"),
        }
    }

    fn finish(&self) {
        if let Ok(state) = self.state.lock() {
            for bar in state.bars.values() {
                bar.finish();
            }
            // The bars leave the cursor at the end of the last one; what follows (stdout,
            // same terminal) starts on its own line.
            if !state.bars.is_empty() {
                eprintln!();
            }
        }
    }

    fn status(&self, id: &str, status: &'static str, bytes: Option<(u64, u64)>) {
        if self.quiet {
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        match &self.bars {
            Some(m) => {
                let bar = state
                    .bars
                    .entry(id.to_string())
                    .or_insert_with(|| {
                        let b = m.add(ProgressBar::new(0));
                        b.set_style(
                            ProgressStyle::with_template(
                                "{prefix}: {msg:<18} {wide_bar} {bytes:>9}/{total_bytes:<9}",
                            )
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                        );
                        b.set_prefix(id.to_string());
                        b
                    })
                    .clone();
                bar.set_message(status);
                if let Some((cur, total)) = bytes {
                    bar.set_length(total);
                    bar.set_position(cur);
                }
            }
            None => {
                if state.said.get(id) != Some(&status) {
                    state.said.insert(id.to_string(), status);
                    println!("{id}: {status}");
                }
            }
        }
    }
}

impl Progress {
    /// A progress message from the daemon (Docker's JSON form) shown as a local event.
    fn message(&self, m: &CreateImageInfo) {
        let Some(id) = m.id.as_deref() else {
            return;
        };
        let status: &'static str = match m.status.as_deref().unwrap_or_default() {
            "Pulling fs layer" => "Pulling fs layer",
            "Waiting" => "Waiting",
            "Already exists" => "Already exists",
            "Downloading" => "Downloading",
            "Verifying Checksum" => "Verifying Checksum",
            "Download complete" => "Download complete",
            "Extracting" => "Extracting",
            "Pull complete" => "Pull complete",
            // "Pulling from …" (this CLI prints its own) and anything unknown.
            _ => return,
        };
        let bytes = m
            .progress_detail
            .as_ref()
            .and_then(|d| {
                Some((
                    u64::try_from(d.current?).ok()?,
                    u64::try_from(d.total?).ok()?,
                ))
            })
            .filter(|_| status == "Downloading");
        self.status(id, status, bytes);
    }
}

impl PullProgress for Progress {
    fn event(&self, _image: &str, event: PullEvent) {
        match event {
            PullEvent::Resolved { layers, .. } => {
                for (id, _) in layers {
                    self.status(&id, "Pulling fs layer", None);
                }
            }
            PullEvent::AlreadyExists(id) if self.pushing => {
                self.status(&id, "Layer already exists", None)
            }
            PullEvent::AlreadyExists(id) => self.status(&id, "Already exists", None),
            PullEvent::Pushed(id) => self.status(&id, "Pushed", None),
            PullEvent::Downloading { id, current, total } => {
                self.status(&id, "Downloading", Some((current, total)))
            }
            PullEvent::Verifying(id) => self.status(&id, "Verifying Checksum", None),
            PullEvent::DownloadComplete(id) => self.status(&id, "Download complete", None),
            PullEvent::Extracting(id) => self.status(&id, "Extracting", None),
            PullEvent::PullComplete(id) => self.status(&id, "Pull complete", None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_261_000), "4.261MB");
        assert_eq!(human_size(1_000_000), "1MB");
        assert_eq!(human_size(123_456_789), "123.5MB");
        assert_eq!(human_duration(Duration::from_secs(30)), "30 seconds");
        assert_eq!(human_duration(Duration::from_secs(90)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(3 * 86_400)), "3 days");
        assert_eq!(human_duration(Duration::from_secs(20 * 86_400)), "2 weeks");
    }
}
