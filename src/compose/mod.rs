//! The Compose loader: files → one typed, normalized [`Project`], as Docker Compose v2 does.
//!
//! Pipeline per file: YAML (positioned tree) → interpolation → schema validation →
//! canonical long syntax → `extends` → `include` → merge into the files before it. Then, for
//! the whole project: defaults, path resolution, environment resolution, profiles,
//! normalization, consistency checks, the dependency graph, and the typed model.
//! Pure: no I/O beyond reading the files and the environment it is given.

pub mod canonical;
pub mod de;
pub mod discover;
pub mod dotenv;
pub mod emit;
pub mod graph;
pub mod interpolate;
pub mod merge;
pub mod model;
pub mod normalize;
mod par;
pub mod paths;
pub mod schema;
pub mod validate;
pub mod yaml;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use indexmap::IndexSet;
use serde::Deserialize;

pub use discover::Env;
pub use model::Project;
use yaml::{Map, Node, Pos, Value};

/// Everything that can go wrong while loading; each variant names the file and position or
/// the key path.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no configuration file provided: no compose.yaml, compose.yml, docker-compose.yml or docker-compose.yaml in {} or any parent directory", .dir.display())]
    NoConfigFile { dir: PathBuf },
    #[error("invalid project name {name:?} (from {source_of_name}): it must contain only lowercase letters, digits, dashes and underscores, and start with a letter or digit")]
    ProjectName {
        name: String,
        source_of_name: String,
    },
    #[error(
        "no valid project name can be derived from {from}; set one with -p or a top-level `name:`"
    )]
    NoProjectName { from: String },
    #[error(transparent)]
    Yaml(#[from] yaml::YamlError),
    #[error("{}", render_schema(.0))]
    Schema(Vec<schema::SchemaError>),
    #[error(transparent)]
    Interpolate(#[from] interpolate::InterpolateError),
    #[error(transparent)]
    Dotenv(#[from] dotenv::DotenvError),
    #[error(transparent)]
    Canonical(#[from] canonical::CanonicalError),
    #[error(transparent)]
    Merge(#[from] merge::MergeError),
    #[error(transparent)]
    Consistency(#[from] validate::ConsistencyError),
    #[error(transparent)]
    Cycle(#[from] graph::CycleError),
    #[error("{pos}: env file {path}: {source}")]
    EnvFile {
        pos: Pos,
        path: String,
        source: std::io::Error,
    },
    #[error("{pos}: {message}")]
    Invalid { pos: Pos, message: String },
    #[error("{path}: {message}")]
    Model { path: String, message: String },
    #[error("no such service: {0}")]
    NoSuchService(String),
}

fn render_schema(errs: &[schema::SchemaError]) -> String {
    errs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn invalid(pos: &Pos, message: impl Into<String>) -> ComposeError {
    ComposeError::Invalid {
        pos: pos.clone(),
        message: message.into(),
    }
}

/// What the user asked for on the command line, plus the process environment, so loading
/// is a pure function of its inputs.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// `-f` files in order; `-` reads `stdin`.
    pub files: Vec<PathBuf>,
    pub project_directory: Option<PathBuf>,
    pub project_name: Option<String>,
    pub env_files: Vec<PathBuf>,
    pub profiles: Vec<String>,
    /// Services named on the command line: enabled with their dependencies.
    pub services: Vec<String>,
    pub interpolate: bool,
    pub normalize: bool,
    pub resolve_paths: bool,
    pub consistency: bool,
    pub os_env: Env,
    pub cwd: PathBuf,
    pub stdin: Option<String>,
}

impl LoadOptions {
    /// Options for the current process: its environment and working directory.
    pub fn from_process() -> std::io::Result<Self> {
        Ok(LoadOptions {
            files: vec![],
            project_directory: None,
            project_name: None,
            env_files: vec![],
            profiles: vec![],
            services: vec![],
            interpolate: true,
            normalize: true,
            resolve_paths: true,
            consistency: true,
            os_env: std::env::vars().collect(),
            cwd: std::env::current_dir()?,
            stdin: None,
        })
    }
}

/// A loaded project with the warnings Compose would print.
#[derive(Debug)]
pub struct Loaded {
    /// The typed project; `None` when loaded without interpolation.
    pub project: Option<Project>,
    /// The normalized document (positions kept), for tools that need them.
    pub doc: Node,
    /// Every profile named anywhere in the files, sorted.
    pub all_profiles: Vec<String>,
    /// Services in start order (dependencies first).
    pub order: Vec<String>,
    pub warnings: Vec<String>,
    pub files: Vec<PathBuf>,
    pub working_dir: PathBuf,
}

struct Ctx<'a> {
    env: Env,
    interpolate: bool,
    stdin: Option<&'a str>,
    warnings: Vec<String>,
    missing: IndexSet<String>,
    /// Files being included, to refuse include cycles.
    include_chain: Vec<PathBuf>,
    home: Option<String>,
}

/// Load the project described by `opts`.
pub fn load(opts: &LoadOptions) -> Result<Loaded, ComposeError> {
    let early_dir =
        discover::early_working_dir(opts.project_directory.as_deref(), &opts.files, &opts.cwd);
    // `--env-file` paths are relative to where the user stands, not to the project.
    let env_files: Vec<PathBuf> = opts
        .env_files
        .iter()
        .map(|f| discover::absolute(&opts.cwd, f))
        .collect();
    let mut env = discover::environment(&opts.os_env, &env_files, &early_dir)?;
    let mut warnings = Vec::new();
    let search_from = opts
        .project_directory
        .as_deref()
        .map_or_else(|| opts.cwd.clone(), |d| discover::absolute(&opts.cwd, d));
    let files = discover::config_files(&opts.files, &env, &search_from, &mut warnings)?;
    let working_dir = match &opts.project_directory {
        Some(d) => discover::absolute(&opts.cwd, d),
        None => files
            .iter()
            .find(|f| f.as_os_str() != "-")
            .and_then(|f| f.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| opts.cwd.clone()),
    };

    // Explicit names first; they are also visible to interpolation.
    let explicit = match (&opts.project_name, env.get("COMPOSE_PROJECT_NAME")) {
        (Some(n), _) => Some((n.clone(), "-p")),
        (None, Some(n)) if !n.is_empty() => Some((n.clone(), "COMPOSE_PROJECT_NAME")),
        _ => None,
    };
    if let Some((n, src)) = &explicit {
        discover::check_project_name(n, src)?;
        env.insert("COMPOSE_PROJECT_NAME".into(), n.clone());
    }

    let profiles: Vec<String> = if opts.profiles.is_empty() {
        env.get("COMPOSE_PROFILES")
            .map(|p| {
                p.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    } else {
        opts.profiles.clone()
    };

    let mut ctx = Ctx {
        home: env.get("HOME").cloned(),
        env,
        interpolate: opts.interpolate,
        stdin: opts.stdin.as_deref(),
        warnings,
        missing: IndexSet::new(),
        include_chain: files
            .iter()
            .filter(|f| f.as_os_str() != "-")
            .cloned()
            .collect(),
    };
    let sources = read_sources(&ctx, &files, &working_dir)?;

    // The name is settled before the files are interpolated: Compose makes it available to
    // them as ${COMPOSE_PROJECT_NAME}.
    let name = match explicit {
        Some((n, _)) => n,
        None => project_name_from_files(&mut ctx, &sources, &working_dir, opts.normalize)?,
    };
    ctx.env.insert("COMPOSE_PROJECT_NAME".into(), name.clone());

    // The project's own env files are read once profiles are applied: a disabled service's
    // missing env file is no error, as in Compose.
    let mut doc = load_model(&mut ctx, sources, &working_dir, opts.resolve_paths, false)?;
    if let Some(m) = doc.as_map_mut() {
        let pos = m
            .get("name")
            .map_or_else(|| doc_pos(&files), |n| n.pos.clone());
        m.shift_insert(0, "name".into(), Node::str(name.clone(), pos));
    }

    let all_profiles = collect_profiles(&doc);
    // Without interpolation Compose prints the raw model: every service, whatever its
    // profiles, and no consistency checks (values may still be `${…}` templates).
    let disabled = if opts.interpolate {
        select_services(&mut doc, &profiles, &opts.services)?
    } else {
        Map::default()
    };
    // Compose decodes every service before applying profiles, so a bad value in a disabled
    // one is still an error.
    for svc in disabled.values() {
        if let Err(e) = model::ServiceConfig::deserialize(svc) {
            return Err(ComposeError::Model {
                path: svc.pos.to_string(),
                message: e.to_string(),
            });
        }
    }
    // The raw model (no interpolation) keeps `env_file` as written, as Compose prints it.
    if opts.interpolate {
        normalize::resolve_environment(&mut doc, &ctx.env)?;
    }

    if opts.normalize {
        normalize::implicit_dependencies(&mut doc);
        normalize::service_defaults(&mut doc);
        normalize::resource_names(&mut doc, &name);
    }
    if opts.consistency && opts.interpolate {
        let disabled_names: BTreeSet<String> = disabled.keys().cloned().collect();
        validate::check(&doc, &disabled_names)?;
    }
    let order = match doc.get("services").and_then(Node::as_map) {
        Some(services) => {
            graph::check_cycles(services)?;
            graph::ServiceGraph::from_services(services)
                .start_order()
                .unwrap_or_default()
        }
        None => Vec::new(),
    };
    if opts.interpolate {
        normalize::prune_unused(&mut doc);
    }

    // Without interpolation values may still be `${…}` templates, which no typed field
    // holds; Compose then prints the raw model, and so do we.
    let project = if opts.interpolate {
        Some(to_model(&doc)?)
    } else {
        None
    };
    let mut warnings = ctx.warnings;
    for var in &ctx.missing {
        warnings.push(format!(
            "The {var:?} variable is not set. Defaulting to a blank string."
        ));
    }
    Ok(Loaded {
        project,
        doc,
        all_profiles,
        order,
        warnings,
        files,
        working_dir,
    })
}

fn doc_pos(files: &[PathBuf]) -> Pos {
    let f = files
        .first()
        .map(|f| f.display().to_string())
        .unwrap_or_default();
    Pos::new(&f.into(), 0, 0)
}

/// Deserialize the normalized document into the typed model, errors pointing at the field.
fn to_model(doc: &Node) -> Result<Project, ComposeError> {
    // Fast path straight from the tree; only on failure pay for path tracking to say where.
    if let Some(project) = model_fast(doc) {
        return check_keys(doc, project);
    }
    let json = doc.to_json();
    let project: Project = serde_path_to_error::deserialize(&json).map_err(|e| {
        let path = e.path().to_string();
        let segments: Vec<String> = path
            .split(['.', '[', ']'])
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let mut node = doc;
        for s in &segments {
            match node.get(s).or_else(|| {
                s.parse::<usize>()
                    .ok()
                    .and_then(|i| node.as_seq().and_then(|q| q.get(i)))
            }) {
                Some(n) => node = n,
                None => break,
            }
        }
        ComposeError::Model {
            path: format!("{}: {path}", node.pos),
            message: e.inner().to_string(),
        }
    })?;
    check_keys(doc, project)
}

/// The typed project without error paths; a large project's services are deserialized in
/// parallel, everything else in one go.
fn model_fast(doc: &Node) -> Option<Project> {
    let services = match doc.as_map().and_then(|top| top.get("services")) {
        Some(Node {
            value: Value::Map(s),
            ..
        }) if par::worth_it(s.len()) => s,
        _ => return Project::deserialize(doc).ok(),
    };
    let rest: Map = doc
        .as_map()?
        .iter()
        .filter(|(k, _)| k.as_str() != "services")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut project = Project::deserialize(&Node::map(rest, doc.pos.clone())).ok()?;
    let entries: Vec<(&String, &Node)> = services.iter().collect();
    let parsed = par::map_in_order(&entries, |(_, n)| {
        Option::<model::ServiceConfig>::deserialize(*n)
            .ok()
            .map(Option::unwrap_or_default)
    });
    for ((name, _), svc) in entries.into_iter().zip(parsed) {
        project.services.insert(name.clone(), svc?);
    }
    Some(project)
}

/// The schema already refuses unknown keys; what it allows, the model must hold (the
/// kitchen-sink test proves it for every property). Probing costs a full serialization, so
/// it runs in debug builds only: tests and fuzzing catch a model gap.
fn check_keys(doc: &Node, project: Project) -> Result<Project, ComposeError> {
    if !cfg!(debug_assertions) {
        return Ok(project);
    }
    match project.unknown_keys().first() {
        None => Ok(project),
        Some(path) => Err(ComposeError::Model {
            path: format!("{}: {path}", doc.pos),
            message: "key not supported by berth's model".into(),
        }),
    }
}

/// One config file, parsed.
struct Source {
    label: String,
    dir: PathBuf,
    docs: Vec<Node>,
}

fn read_sources(
    ctx: &Ctx<'_>,
    files: &[PathBuf],
    working_dir: &Path,
) -> Result<Vec<Source>, ComposeError> {
    files
        .iter()
        .map(|f| {
            let (src, label, dir) = if f.as_os_str() == "-" {
                let src = ctx
                    .stdin
                    .ok_or_else(|| invalid(&Pos::default(), "`-f -` given but no standard input"))?
                    .to_string();
                (src, "(stdin)".to_string(), working_dir.to_path_buf())
            } else {
                let dir = f
                    .parent()
                    .map_or_else(|| working_dir.to_path_buf(), Path::to_path_buf);
                (discover::read(f)?, f.display().to_string(), dir)
            };
            let docs = yaml::parse(&src, &label)?;
            Ok(Source { label, dir, docs })
        })
        .collect()
}

/// The top-level `name:` of the last file that sets one (interpolated, then normalized as
/// Compose does), else the project directory's name.
fn project_name_from_files(
    ctx: &mut Ctx<'_>,
    sources: &[Source],
    working_dir: &Path,
    normalize: bool,
) -> Result<String, ComposeError> {
    let mut from_file = None;
    for doc in sources.iter().flat_map(|s| &s.docs) {
        if let Some(n) = doc.get("name") {
            if let Some(text) = n.as_str() {
                let value = if ctx.interpolate {
                    let env = &ctx.env;
                    let lookup = |k: &str| env.get(k).cloned();
                    let mut missing = Vec::new();
                    let v = interpolate::interpolate_str(text, &lookup, &mut missing)
                        .map_err(|e| invalid(&n.pos, format!("name: {e}")))?;
                    ctx.missing.extend(missing);
                    v
                } else {
                    text.to_string()
                };
                from_file = Some((value, n.pos.clone()));
            }
        }
    }
    let (raw, what) = match from_file {
        // `--no-normalize` prints the name exactly as written.
        Some((v, _)) if !v.is_empty() && !normalize => return Ok(v),
        Some((v, pos)) if !v.is_empty() => (v, format!("`name:` at {pos}")),
        _ => (
            working_dir
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            format!("directory {}", working_dir.display()),
        ),
    };
    let n = discover::normalize_project_name(&raw);
    if n.is_empty() {
        return Err(ComposeError::NoProjectName { from: what });
    }
    Ok(n)
}

/// Merge parsed files into one canonical document with paths resolved against
/// `working_dir` and environments resolved (compose-go's "yaml model").
fn load_model(
    ctx: &mut Ctx<'_>,
    sources: Vec<Source>,
    working_dir: &Path,
    resolve: bool,
    resolve_env: bool,
) -> Result<Node, ComposeError> {
    // Every document is merged into what came before, the first into nothing, as Compose
    // does: that collapses duplicates, and applies `!reset`/`!override` against earlier files.
    let mut acc: Option<Node> = None;
    for source in sources {
        for doc in load_file(ctx, source, working_dir)? {
            let base = acc.unwrap_or_else(|| Node::new(Value::Null, doc.pos.clone()));
            acc = Some(merge::merge_project(base, doc)?);
        }
    }
    let mut doc = acc.unwrap_or_else(|| Node::map(Map::default(), Pos::default()));
    doc = canonical::set_defaults(doc)?;
    if resolve {
        paths::Resolver {
            base: working_dir,
            home: ctx.home.as_deref(),
        }
        .resolve(&mut doc);
    }
    if resolve_env && ctx.interpolate {
        normalize::resolve_environment(&mut doc, &ctx.env)?;
    }
    Ok(doc)
}

/// One file: every YAML document in it, interpolated, validated, canonical, with `extends`
/// and `include` applied.
fn load_file(
    ctx: &mut Ctx<'_>,
    source: Source,
    working_dir: &Path,
) -> Result<Vec<Node>, ComposeError> {
    let Source { label, dir, docs } = source;
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        if doc.is_null() {
            continue;
        }
        let mut doc = prepare_document(ctx, doc, &label)?;
        apply_extends(ctx, &mut doc, &label, &dir)?;
        apply_include(ctx, &mut doc, working_dir)?;
        out.push(doc);
    }
    Ok(out)
}

/// The steps every YAML document goes through on its own: top-level check, interpolation,
/// schema validation, `version` removal, canonical long syntax.
fn prepare_document(ctx: &mut Ctx<'_>, mut doc: Node, label: &str) -> Result<Node, ComposeError> {
    if !matches!(doc.value, Value::Map(_)) {
        return Err(invalid(
            &doc.pos,
            format!("the top level must be a mapping, found a {}", doc.kind()),
        ));
    }
    if ctx.interpolate {
        let env = &ctx.env;
        let lookup = |k: &str| env.get(k).cloned();
        let mut missing = Vec::new();
        interpolate::interpolate_tree(&mut doc, &lookup, &mut missing)?;
        ctx.missing.extend(missing);
    }
    merge::drop_exact_duplicates(&mut doc);
    let interpolate = ctx.interpolate;
    let canonicalize = move |mut doc: Node| {
        let had_version = doc
            .as_map_mut()
            .is_some_and(|m| m.shift_remove("version").is_some());
        let r = if interpolate {
            canonical::canonicalize_with_warnings(doc)
        } else {
            canonical::canonicalize_lenient(doc)
        };
        (had_version, r)
    };
    // A large document is validated while a copy of it is canonicalized; the schema's
    // verdict still comes first, so errors are the same as in order.
    let (errs, (had_version, canonical)) = if par::worth_it(service_count(&doc)) {
        let copy = doc.clone();
        rayon::join(|| schema::validate(&doc), || canonicalize(copy))
    } else {
        let errs = schema::validate(&doc);
        if !errs.is_empty() {
            return Err(ComposeError::Schema(errs));
        }
        (errs, canonicalize(doc))
    };
    if !errs.is_empty() {
        return Err(ComposeError::Schema(errs));
    }
    if had_version {
        ctx.warnings.push(format!(
            "{label}: the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion"
        ));
    }
    let (doc, deprecations) = canonical?;
    ctx.warnings.extend(deprecations);
    Ok(doc)
}

fn service_count(doc: &Node) -> usize {
    doc.get("services")
        .and_then(Node::as_map)
        .map_or(0, Map::len)
}

/// Resolve every service's `extends` within `doc` (whose file is `label` in `file_dir`).
fn apply_extends(
    ctx: &mut Ctx<'_>,
    doc: &mut Node,
    label: &str,
    file_dir: &Path,
) -> Result<(), ComposeError> {
    let Some(services) = doc.get("services").and_then(Node::as_map) else {
        return Ok(());
    };
    let extending: Vec<String> = services
        .iter()
        .filter(|(_, svc)| svc.get("extends").is_some())
        .map(|(name, _)| name.clone())
        .collect();
    if extending.is_empty() {
        return Ok(());
    }
    // Resolve against the services as written, then write the results back.
    let original = services.clone();
    let mut resolved = Vec::with_capacity(extending.len());
    for name in extending {
        let mut chain = Vec::new();
        let svc = resolve_extends(ctx, &original, &name, label, file_dir, &mut chain)?;
        resolved.push((name, svc));
    }
    if let Some(m) = doc.get_map_mut("services") {
        for (name, svc) in resolved {
            m.insert(name, svc);
        }
    }
    Ok(())
}

fn resolve_extends(
    ctx: &mut Ctx<'_>,
    services: &Map,
    name: &str,
    label: &str,
    file_dir: &Path,
    chain: &mut Vec<(String, String)>,
) -> Result<Node, ComposeError> {
    let Some(svc) = services.get(name) else {
        return Err(ComposeError::NoSuchService(name.to_string()));
    };
    let Some(ext) = svc.get("extends").cloned() else {
        return Ok(svc.clone());
    };
    let key = (label.to_string(), name.to_string());
    if chain.contains(&key) {
        let mut names: Vec<String> = chain.iter().map(|(_, s)| s.clone()).collect();
        names.push(name.to_string());
        return Err(invalid(
            &ext.pos,
            format!("extends cycle: {}", names.join(" -> ")),
        ));
    }
    chain.push(key);
    let base_name = ext
        .get("service")
        .and_then(Node::as_str)
        .ok_or_else(|| invalid(&ext.pos, "extends needs `service`"))?
        .to_string();
    let mut base = match ext.get("file").and_then(Node::as_str) {
        None => {
            if !services.contains_key(&base_name) {
                return Err(invalid(
                    &ext.pos,
                    format!("service {name:?} extends undefined service {base_name:?}"),
                ));
            }
            resolve_extends(ctx, services, &base_name, label, file_dir, chain)?
        }
        Some(file) => {
            let path = discover::absolute(file_dir, Path::new(file));
            let src = discover::read(&path)?;
            let other_label = path.display().to_string();
            let other_dir = path
                .parent()
                .map_or_else(|| file_dir.to_path_buf(), Path::to_path_buf);
            // Parse/interpolate/validate/canonicalize the other file, but resolve only the
            // chain we need (its other services may extend things we never use).
            let mut other = Node::map(Map::default(), Pos::default());
            for d in yaml::parse(&src, &other_label)? {
                if d.is_null() {
                    continue;
                }
                let d = prepare_document(ctx, d, &other_label)?;
                other = merge::merge_project(other, d)?;
            }
            let other_services = other
                .get("services")
                .and_then(Node::as_map)
                .cloned()
                .unwrap_or_default();
            if !other_services.contains_key(&base_name) {
                return Err(invalid(
                    &ext.pos,
                    format!("service {name:?} extends service {base_name:?}, which {file} does not define"),
                ));
            }
            let mut b = resolve_extends(
                ctx,
                &other_services,
                &base_name,
                &other_label,
                &other_dir,
                chain,
            )?;
            // Relative paths in the base service are relative to its own file.
            paths::Resolver {
                base: &other_dir,
                home: ctx.home.as_deref(),
            }
            .service(&mut b);
            b
        }
    };
    chain.pop();
    if let Some(m) = base.as_map_mut() {
        m.shift_remove("extends");
    }
    let mut own = svc.clone();
    if let Some(m) = own.as_map_mut() {
        m.shift_remove("extends");
    }
    Ok(merge::merge_service(base, own)?)
}

/// Bring in the resources of every `include` entry; the included projects keep their own
/// directory and environment.
fn apply_include(
    ctx: &mut Ctx<'_>,
    doc: &mut Node,
    working_dir: &Path,
) -> Result<(), ComposeError> {
    let Some(includes) = doc.as_map_mut().and_then(|m| m.shift_remove("include")) else {
        return Ok(());
    };
    for inc in includes.as_seq().cloned().unwrap_or_default() {
        let as_list = |n: Option<&Node>| -> Vec<String> {
            match n.map(|n| &n.value) {
                Some(Value::Str(s)) => vec![s.clone()],
                Some(Value::Seq(items)) => items.iter().filter_map(Node::scalar_text).collect(),
                _ => vec![],
            }
        };
        let paths: Vec<PathBuf> = match &inc.value {
            Value::Str(s) => vec![discover::absolute(working_dir, Path::new(s))],
            _ => as_list(inc.get("path"))
                .iter()
                .map(|p| discover::absolute(working_dir, Path::new(p)))
                .collect(),
        };
        let Some(first) = paths.first().cloned() else {
            return Err(invalid(&inc.pos, "include entry needs a `path`"));
        };
        if let Some(p) = paths.iter().find(|p| ctx.include_chain.contains(p)) {
            return Err(invalid(
                &inc.pos,
                format!("include cycle: {} is already being included", p.display()),
            ));
        }
        let project_dir = inc
            .get("project_directory")
            .and_then(Node::as_str)
            .map(|d| discover::absolute(working_dir, Path::new(d)))
            .unwrap_or_else(|| {
                first
                    .parent()
                    .map_or_else(|| working_dir.to_path_buf(), Path::to_path_buf)
            });
        let mut env_files: Vec<PathBuf> = as_list(inc.get("env_file"))
            .iter()
            .map(|p| discover::absolute(working_dir, Path::new(p)))
            .collect();
        if env_files.is_empty() && project_dir.join(".env").is_file() {
            env_files.push(project_dir.join(".env"));
        }
        // The included project's env files win over the including environment.
        let mut env = ctx.env.clone();
        let from_files = discover::environment(&Env::new(), &env_files, &project_dir)?;
        env.extend(from_files);

        let saved_env = std::mem::replace(&mut ctx.env, env);
        ctx.include_chain.extend(paths.iter().cloned());
        let result = read_sources(ctx, &paths, &project_dir)
            .and_then(|sources| load_model(ctx, sources, &project_dir, true, true));
        ctx.include_chain
            .truncate(ctx.include_chain.len() - paths.len());
        ctx.env = saved_env;
        let imported = result?;
        import_resources(doc, imported, &inc.pos)?;
    }
    Ok(())
}

fn import_resources(doc: &mut Node, imported: Node, pos: &Pos) -> Result<(), ComposeError> {
    let Value::Map(sections) = imported.value else {
        return Ok(());
    };
    for (section, items) in sections {
        if !matches!(
            section.as_str(),
            "services" | "networks" | "volumes" | "secrets" | "configs"
        ) {
            continue;
        }
        let Value::Map(items) = items.value else {
            continue;
        };
        let doc_pos = doc.pos.clone();
        let target = doc
            .as_map_mut()
            .map(|m| {
                m.entry(section.clone())
                    .or_insert_with(|| Node::map(Map::default(), doc_pos))
            })
            .and_then(Node::as_map_mut);
        let Some(target) = target else { continue };
        for (k, v) in items {
            match target.get(&k) {
                Some(existing) if existing.to_json() != v.to_json() => {
                    return Err(invalid(
                        pos,
                        format!(
                            "included file defines {section}.{k}, which conflicts with {section}.{k} at {}",
                            existing.pos
                        ),
                    ))
                }
                Some(_) => {}
                None => {
                    target.insert(k, v);
                }
            }
        }
    }
    Ok(())
}

fn collect_profiles(doc: &Node) -> Vec<String> {
    let mut set = BTreeSet::new();
    for svc in doc
        .get("services")
        .and_then(Node::as_map)
        .into_iter()
        .flat_map(|m| m.values())
    {
        for p in svc
            .get("profiles")
            .and_then(Node::as_seq)
            .into_iter()
            .flatten()
        {
            if let Some(s) = p.as_str() {
                set.insert(s.to_string());
            }
        }
    }
    set.into_iter().collect()
}

/// Keep the services whose profiles are active (or that have none); with services named on
/// the command line, keep those and their dependencies instead, whatever their profiles.
/// Returns the services left out.
fn select_services(
    doc: &mut Node,
    profiles: &[String],
    targets: &[String],
) -> Result<Map, ComposeError> {
    let Some(services) = doc.get_map_mut("services") else {
        if let Some(t) = targets.first() {
            return Err(ComposeError::NoSuchService(t.clone()));
        }
        return Ok(Map::default());
    };
    let keep: IndexSet<String> = if targets.is_empty() {
        services
            .iter()
            .filter(
                |(_, svc)| match svc.get("profiles").and_then(Node::as_seq) {
                    None => true,
                    Some(ps) if ps.is_empty() => true,
                    Some(ps) => ps
                        .iter()
                        .filter_map(Node::as_str)
                        .any(|p| profiles.iter().any(|a| a == "*" || a == p)),
                },
            )
            .map(|(name, _)| name.clone())
            .collect()
    } else {
        if let Some(t) = targets.iter().find(|t| !services.contains_key(*t)) {
            return Err(ComposeError::NoSuchService(t.clone()));
        }
        graph::ServiceGraph::from_services(services).with_dependencies(targets)
    };
    let mut disabled = Map::default();
    for (name, svc) in std::mem::take(services) {
        if keep.contains(&name) {
            services.insert(name, svc);
        } else {
            disabled.insert(name, svc);
        }
    }
    Ok(disabled)
}
