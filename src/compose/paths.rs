//! Relative path resolution on a canonical document: the fields Compose makes absolute
//! against the project (or included/extended file's) directory, with `~` expanded.

use std::path::Path;

use super::discover::absolute;
use super::yaml::{Node, Value};

pub struct Resolver<'a> {
    pub base: &'a Path,
    pub home: Option<&'a str>,
}

impl Resolver<'_> {
    fn path(&self, s: &str) -> String {
        let expanded = match (s.strip_prefix('~'), self.home) {
            (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
                format!("{home}{rest}")
            }
            _ => s.to_string(),
        };
        absolute(self.base, Path::new(&expanded))
            .display()
            .to_string()
    }

    fn set(&self, node: Option<&mut Node>) {
        if let Some(n) = node {
            if let Value::Str(s) = &n.value {
                let r = self.path(s);
                n.value = Value::Str(r);
            }
        }
    }

    /// Build contexts may be remote (git URLs, `https://…`); those stay as written.
    fn context(&self, node: Option<&mut Node>) {
        if let Some(n) = node {
            if let Value::Str(s) = &n.value {
                if !is_remote_context(s) {
                    n.value = Value::Str(self.path(s));
                }
            }
        }
    }

    pub fn resolve(&self, doc: &mut Node) {
        if let Some(services) = doc.get_map_mut("services") {
            for svc in services.values_mut() {
                self.service(svc);
            }
        }
        for section in ["secrets", "configs"] {
            if let Some(items) = doc.get_map_mut(section) {
                for item in items.values_mut() {
                    self.set(item.as_map_mut().and_then(|m| m.get_mut("file")));
                }
            }
        }
        if let Some(Value::Seq(includes)) = doc
            .as_map_mut()
            .and_then(|m| m.get_mut("include"))
            .map(|n| &mut n.value)
        {
            for inc in includes {
                if let Some(m) = inc.as_map_mut() {
                    for key in ["path", "env_file"] {
                        match m.get_mut(key).map(|n| &mut n.value) {
                            Some(Value::Seq(items)) => {
                                items.iter_mut().for_each(|i| self.set(Some(i)))
                            }
                            Some(Value::Str(_)) => self.set(m.get_mut(key)),
                            _ => {}
                        }
                    }
                    self.set(m.get_mut("project_directory"));
                }
            }
        }
        // Local volumes bound to a host directory (`driver_opts: {o: bind, device: ./x}`).
        if let Some(vols) = doc.get_map_mut("volumes") {
            for v in vols.values_mut() {
                let Some(opts) = v
                    .as_map_mut()
                    .and_then(|m| m.get_mut("driver_opts"))
                    .and_then(Node::as_map_mut)
                else {
                    continue;
                };
                let is_bind = opts
                    .get("o")
                    .and_then(Node::as_str)
                    .is_some_and(|o| o.split(',').any(|x| x == "bind"));
                if is_bind {
                    self.set(opts.get_mut("device"));
                }
            }
        }
    }

    pub fn service(&self, svc: &mut Node) {
        let Some(m) = svc.as_map_mut() else { return };
        if let Some(build) = m.get_mut("build").and_then(Node::as_map_mut) {
            self.context(build.get_mut("context"));
            if let Some(extra) = build
                .get_mut("additional_contexts")
                .and_then(Node::as_map_mut)
            {
                for v in extra.values_mut() {
                    if v.as_str()
                        .is_some_and(|s| !s.contains(':') || s.starts_with('.'))
                    {
                        self.context(Some(v));
                    }
                }
            }
        }
        if let Some(Value::Seq(files)) = m.get_mut("env_file").map(|n| &mut n.value) {
            for f in files {
                self.set(f.as_map_mut().and_then(|m| m.get_mut("path")));
            }
        }
        if let Some(Value::Seq(files)) = m.get_mut("label_file").map(|n| &mut n.value) {
            files.iter_mut().for_each(|f| self.set(Some(f)));
        }
        if let Some(ext) = m.get_mut("extends").and_then(Node::as_map_mut) {
            self.set(ext.get_mut("file"));
        }
        if let Some(Value::Seq(vols)) = m.get_mut("volumes").map(|n| &mut n.value) {
            for v in vols {
                let Some(vm) = v.as_map_mut() else { continue };
                if vm.get("type").and_then(Node::as_str) == Some("bind") {
                    self.set(vm.get_mut("source"));
                }
            }
        }
        if let Some(Value::Seq(watch)) = m
            .get_mut("develop")
            .and_then(Node::as_map_mut)
            .and_then(|d| d.get_mut("watch"))
            .map(|n| &mut n.value)
        {
            for w in watch {
                self.set(w.as_map_mut().and_then(|m| m.get_mut("path")));
            }
        }
    }
}

fn is_remote_context(s: &str) -> bool {
    s.contains("://") || s.starts_with("git@") || s.starts_with("github.com/")
}

/// Go's `path.Clean`.
pub fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::yaml::parse;

    #[test]
    fn resolves_bind_sources_contexts_and_files() {
        let mut doc = parse(
            "services:\n  a:\n    build: {context: ./app}\n    volumes:\n      - {type: bind, source: ./d, target: /d}\n      - {type: bind, source: ~/h, target: /h}\n      - {type: volume, source: v, target: /v}\n    env_file: [{path: a.env, required: true}]\n  b:\n    build: {context: 'https://example.com/x.git'}\nsecrets:\n  s: {file: ../s.txt}\n",
            "c.yaml",
        )
        .expect("yaml")
        .remove(0);
        Resolver {
            base: Path::new("/p/q"),
            home: Some("/root"),
        }
        .resolve(&mut doc);
        let j = doc.to_json();
        assert_eq!(j["services"]["a"]["build"]["context"], "/p/q/app");
        assert_eq!(j["services"]["a"]["volumes"][0]["source"], "/p/q/d");
        assert_eq!(j["services"]["a"]["volumes"][1]["source"], "/root/h");
        assert_eq!(j["services"]["a"]["volumes"][2]["source"], "v");
        assert_eq!(j["services"]["a"]["env_file"][0]["path"], "/p/q/a.env");
        assert_eq!(
            j["services"]["b"]["build"]["context"],
            "https://example.com/x.git"
        );
        assert_eq!(j["secrets"]["s"]["file"], "/p/s.txt");
    }
}
