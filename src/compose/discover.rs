//! Where the project comes from: config files, the environment and the project name,
//! following Docker Compose's precedence rules.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::{dotenv, ComposeError};

pub const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];
pub const OVERRIDE_FILES: [&str; 4] = [
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

pub type Env = IndexMap<String, String>;

/// Make a possibly relative path absolute against `base`, without touching the filesystem.
pub fn absolute(base: &Path, p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    PathBuf::from(super::paths::clean(&joined.to_string_lossy()))
}

/// The working directory Compose uses before the project files are known: the project
/// directory, else the directory of the first `-f` file, else the current directory.
pub fn early_working_dir(project_dir: Option<&Path>, files: &[PathBuf], cwd: &Path) -> PathBuf {
    if let Some(d) = project_dir {
        return absolute(cwd, d);
    }
    for f in files {
        if f.as_os_str() != "-" {
            let abs = absolute(cwd, f);
            return abs.parent().map(Path::to_path_buf).unwrap_or(abs);
        }
    }
    cwd.to_path_buf()
}

/// OS environment overlaid on the env files: the OS always wins, later files win over
/// earlier ones. Without `--env-file`, `<working dir>/.env` is read when it exists.
pub fn environment(
    os_env: &Env,
    env_files: &[PathBuf],
    working_dir: &Path,
) -> Result<Env, ComposeError> {
    let files: Vec<PathBuf> = if env_files.is_empty() {
        let dot = working_dir.join(".env");
        if dot.is_file() {
            vec![dot]
        } else {
            vec![]
        }
    } else {
        env_files.iter().map(|f| absolute(working_dir, f)).collect()
    };
    let mut from_files = Env::new();
    for f in files {
        let src = read(&f)?;
        let parsed = {
            let lookup = |k: &str| -> Option<String> {
                os_env.get(k).or_else(|| from_files.get(k)).cloned()
            };
            dotenv::parse(&src, &f.display().to_string(), &lookup)?
        };
        from_files.extend(parsed);
    }
    let mut env = os_env.clone();
    for (k, v) in from_files {
        env.entry(k).or_insert(v);
    }
    Ok(env)
}

pub fn read(path: &Path) -> Result<String, ComposeError> {
    std::fs::read_to_string(path).map_err(|source| ComposeError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The config files: `-f`, else `COMPOSE_FILE`, else the first default name found in the
/// directory or its parents (plus its override file).
pub fn config_files(
    explicit: &[PathBuf],
    env: &Env,
    search_from: &Path,
    warnings: &mut Vec<String>,
) -> Result<Vec<PathBuf>, ComposeError> {
    if !explicit.is_empty() {
        return Ok(explicit
            .iter()
            .map(|f| {
                if f.as_os_str() == "-" {
                    f.clone()
                } else {
                    absolute(search_from, f)
                }
            })
            .collect());
    }
    if let Some(list) = env.get("COMPOSE_FILE").filter(|s| !s.is_empty()) {
        let sep = env
            .get("COMPOSE_PATH_SEPARATOR")
            .filter(|s| !s.is_empty())
            .map_or(":", String::as_str);
        return Ok(list
            .split(sep)
            .filter(|s| !s.is_empty())
            .map(|f| absolute(search_from, Path::new(f)))
            .collect());
    }
    let mut dir = search_from.to_path_buf();
    loop {
        let found = first_existing(&dir, &DEFAULT_FILES, warnings);
        if let Some(main) = found {
            let mut files = vec![main];
            if let Some(o) = first_existing(&dir, &OVERRIDE_FILES, warnings) {
                files.push(o);
            }
            return Ok(files);
        }
        if !dir.pop() {
            return Err(ComposeError::NoConfigFile {
                dir: search_from.to_path_buf(),
            });
        }
    }
}

fn first_existing(dir: &Path, names: &[&str], warnings: &mut Vec<String>) -> Option<PathBuf> {
    let found: Vec<PathBuf> = names
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.is_file())
        .collect();
    if found.len() > 1 {
        let list: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
        warnings.push(format!(
            "Found multiple config files with supported names: {}",
            list.join(", ")
        ));
        warnings.push(format!("Using {}", list[0]));
    }
    found.into_iter().next()
}

/// Compose's rule for names given explicitly (`-p`, COMPOSE_PROJECT_NAME, `name:`).
pub fn check_project_name(name: &str, source: &str) -> Result<(), ComposeError> {
    let valid = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(ComposeError::ProjectName {
            name: name.to_string(),
            source_of_name: source.to_string(),
        })
    }
}

/// Derive a project name from a directory name: lowercase, drop invalid characters,
/// strip leading `-`/`_`.
pub fn normalize_project_name(dir_name: &str) -> String {
    let lowered: String = dir_name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    lowered.trim_start_matches(['_', '-']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_project_name("my-app_1", "-p").is_ok());
        assert!(check_project_name("My", "-p").is_err());
        assert!(check_project_name("_x", "-p").is_err());
        assert!(check_project_name("", "-p").is_err());
        assert_eq!(normalize_project_name("My App.v2"), "myappv2");
        assert_eq!(normalize_project_name("__Dir"), "dir");
    }

    #[test]
    fn absolute_paths_are_cleaned() {
        assert_eq!(
            absolute(Path::new("/a"), Path::new("./b/../c")),
            PathBuf::from("/a/c")
        );
        assert_eq!(
            absolute(Path::new("/p"), Path::new("../x")),
            PathBuf::from("/x")
        );
    }
}
