//! `berth config`: the resolved project, as `docker compose config` prints it.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{load, ProjectArgs};
use crate::compose::yaml::Node;
use crate::compose::{emit, model};

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Services to render (with their dependencies)
    pub services: Vec<String>,
    /// Output format
    #[arg(long, value_enum, default_value = "yaml")]
    pub format: Format,
    /// Only validate the configuration, print nothing
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the service names, one per line
    #[arg(long = "services")]
    pub list_services: bool,
    /// Print the volume names, one per line
    #[arg(long)]
    pub volumes: bool,
    /// Print the network names, one per line
    #[arg(long)]
    pub networks: bool,
    /// Print the profile names, one per line
    #[arg(long = "profiles", id = "list_profiles")]
    pub profiles: bool,
    /// Print the image names, one per line
    #[arg(long)]
    pub images: bool,
    /// Don't interpolate environment variables
    #[arg(long)]
    pub no_interpolate: bool,
    /// Don't normalize the compose model
    #[arg(long)]
    pub no_normalize: bool,
    /// Don't resolve file paths
    #[arg(long)]
    pub no_path_resolution: bool,
    /// Don't check model consistency
    #[arg(long)]
    pub no_consistency: bool,
    /// Save to this file instead of printing
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

pub(super) fn run(project: &ProjectArgs, args: &ConfigArgs) -> Result<(), String> {
    let loaded = load(project, |o| {
        o.services = args.services.clone();
        o.interpolate = !args.no_interpolate;
        o.normalize = !args.no_normalize;
        o.resolve_paths = !args.no_path_resolution;
        o.consistency = !args.no_consistency;
    })?;
    if args.quiet {
        return Ok(());
    }
    let lines = |items: Vec<String>| -> String { items.into_iter().map(|s| s + "\n").collect() };
    let text = if args.list_services {
        lines(loaded.order.clone())
    } else if args.volumes {
        lines(section_keys(&loaded.doc, "volumes"))
    } else if args.networks {
        lines(section_keys(&loaded.doc, "networks"))
    } else if args.profiles {
        lines(loaded.all_profiles.clone())
    } else if args.images {
        let project = loaded
            .doc
            .get("name")
            .and_then(Node::as_str)
            .unwrap_or_default();
        let services = loaded.doc.get("services").and_then(Node::as_map);
        lines(
            services
                .into_iter()
                .flatten()
                .map(|(name, s)| match s.get("image").and_then(Node::as_str) {
                    Some(image) => image.to_string(),
                    None => format!("{project}-{name}"),
                })
                .collect(),
        )
    } else {
        let (yaml, json) = match &loaded.project {
            // Interpolated values are printed re-loadable: a literal `$` becomes `$$`.
            Some(p) => (
                escape_dollars(model::to_config_yaml_value(p)),
                escape_dollars(model::to_config_json(p)),
            ),
            // Without interpolation Compose prints the raw model, keys sorted.
            None => {
                let raw = sorted(loaded.doc.to_json());
                (raw.clone(), raw)
            }
        };
        match args.format {
            Format::Yaml => emit::to_yaml(&yaml),
            Format::Json => emit::to_json(&json),
        }
    };
    // The process ends right after; freeing a large project piece by piece would only
    // delay the exit.
    std::mem::forget(loaded);
    match &args.output {
        Some(path) => std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display())),
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| format!("writing output: {e}")),
    }
}

fn section_keys(doc: &Node, section: &str) -> Vec<String> {
    let mut keys: Vec<String> = doc
        .get(section)
        .and_then(Node::as_map)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

/// Recursively sort object keys, as Go prints a map.
fn sorted(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut entries: Vec<(String, serde_json::Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(sorted).collect())
        }
        other => other,
    }
}

fn escape_dollars(mut v: serde_json::Value) -> serde_json::Value {
    escape_in_place(&mut v);
    v
}

fn escape_in_place(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) if s.contains('$') => *s = s.replace('$', "$$"),
        serde_json::Value::Object(m) => {
            if m.keys().any(|k| k.contains('$')) {
                let old = std::mem::take(m);
                *m = old
                    .into_iter()
                    .map(|(k, v)| (k.replace('$', "$$"), v))
                    .collect();
            }
            m.values_mut().for_each(escape_in_place);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(escape_in_place),
        _ => {}
    }
}
