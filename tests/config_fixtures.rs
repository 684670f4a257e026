//! Runs `berth` against every fixture under tests/fixtures/config/<case>/:
//!   cmd      the arguments (one line, split on whitespace; default `config`)
//!   env      KEY=VALUE lines: the whole process environment (plus HOME=<case>/home)
//!   stdin    fed to standard input when present
//!   stdout   expected standard output, exactly
//!   stderr   lines that must each appear in standard error
//!   exit     expected exit code (default 0)
//!   cwd      sub-directory to run in (default: the case directory)
//!   created  a path that must exist, non-empty, after the run
//! `{{DIR}}` stands for the case directory's absolute path and `{{HOME}}` for HOME, a fresh
//! temporary directory.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config")
}

fn read_opt(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok()
}

fn run_case(dir: &Path) -> Result<(), String> {
    let dir_s = dir.display().to_string();
    let home = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let home_s = home.path().display().to_string();
    let subst = |s: &str| s.replace("{{DIR}}", &dir_s).replace("{{HOME}}", &home_s);
    let cmd = read_opt(&dir.join("cmd")).unwrap_or_else(|| "config".into());
    let args: Vec<String> = cmd.split_whitespace().map(subst).collect();
    let cwd = match read_opt(&dir.join("cwd")) {
        Some(c) => dir.join(c.trim()),
        None => dir.to_path_buf(),
    };
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    c.args(&args)
        .current_dir(&cwd)
        .env_clear()
        .env("HOME", home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(env) = read_opt(&dir.join("env")) {
        for line in env.lines().filter(|l| !l.trim().is_empty()) {
            let (k, v) = line
                .split_once('=')
                .ok_or(format!("bad env line {line:?}"))?;
            c.env(k, subst(v));
        }
    }
    let mut child = c.spawn().map_err(|e| format!("spawn: {e}"))?;
    let input = read_opt(&dir.join("stdin")).unwrap_or_default();
    if let Some(mut s) = child.stdin.take() {
        s.write_all(input.as_bytes())
            .map_err(|e| format!("stdin: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("wait: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want_exit: i32 = read_opt(&dir.join("exit"))
        .map(|s| s.trim().parse().unwrap_or(-1))
        .unwrap_or(0);
    let code = out.status.code().unwrap_or(-1);
    if code != want_exit {
        return Err(format!(
            "exit {code}, want {want_exit}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        ));
    }
    if let Some(want) = read_opt(&dir.join("stdout")) {
        let want = subst(&want);
        if stdout != want {
            return Err(format!(
                "stdout differs\n--- want\n{want}\n--- got\n{stdout}\n--- stderr\n{stderr}"
            ));
        }
    }
    if let Some(want) = read_opt(&dir.join("stderr")) {
        for line in want.lines().filter(|l| !l.trim().is_empty()) {
            let line = subst(line);
            if !stderr.contains(&line) {
                return Err(format!("stderr lacks {line:?}\n--- got\n{stderr}"));
            }
        }
    }
    if let Some(path) = read_opt(&dir.join("created")) {
        let path = subst(path.trim());
        let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len == 0 {
            return Err(format!("{path} was not created"));
        }
    }
    Ok(())
}

#[test]
fn config_fixtures() {
    let mut cases: Vec<PathBuf> = fs::read_dir(fixtures())
        .expect("fixtures dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no fixtures");
    let only = std::env::var("FIXTURE").ok();
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in &cases {
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        ran += 1;
        if let Err(e) = run_case(case) {
            failures.push(format!("== {name}\n{e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} fixtures failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{ran} fixtures passed");
}
