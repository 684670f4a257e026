//! Property tests over the whole loader: arbitrary bytes and arbitrary Compose-shaped YAML
//! must give a project or an error — never a panic, never a hang.

use std::time::{Duration, Instant};

use berth::compose::{self, yaml, LoadOptions};
use proptest::prelude::*;

fn load_text(src: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut opts = LoadOptions::from_process().map_err(|e| e.to_string())?;
    opts.files = vec!["-".into()];
    opts.stdin = Some(src.to_string());
    opts.cwd = dir.path().to_path_buf();
    opts.os_env.clear();
    let t = Instant::now();
    let r = compose::load(&opts);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "load took {:?}",
        t.elapsed()
    );
    // Rendering must hold too when loading succeeded.
    if let Some(p) = r.ok().and_then(|l| l.project) {
        let _ = compose::emit::to_yaml(&compose::model::to_config_yaml_value(&p));
        let _ = compose::emit::to_json(&compose::model::to_config_json(&p));
    }
    Ok(())
}

const KEYS: &[&str] = &[
    "services",
    "image",
    "build",
    "ports",
    "volumes",
    "depends_on",
    "extends",
    "environment",
    "networks",
    "command",
    "entrypoint",
    "healthcheck",
    "test",
    "labels",
    "profiles",
    "env_file",
    "include",
    "secrets",
    "configs",
    "deploy",
    "resources",
    "limits",
    "ulimits",
    "x-ext",
    "name",
    "target",
    "published",
    "source",
    "type",
    "condition",
    "service",
    "file",
    "web",
    "db",
    "<<",
    "network_mode",
    "volumes_from",
    "links",
    "tmpfs",
    "restart",
    "expose",
];
const SCALARS: &[&str] = &[
    "80",
    "8080:80",
    "127.0.0.1:1-2:3-4/udp",
    "./a:/b:ro",
    "vol:/v",
    "~/x:/y",
    "db",
    "web",
    "service:db",
    "${A:-b}",
    "${X:?e}",
    "$$",
    "true",
    "null",
    "1.5",
    "64m",
    "10s",
    "-",
    "",
    "a=b",
    "CMD-SHELL",
    "[",
    "{",
    "*",
    "&",
    "!reset",
    "'q'",
    "\"dq\"",
];

fn yaml_tree() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(SCALARS).prop_map(|s| format!("{s:?}"));
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                let items: Vec<String> =
                    kv.into_iter().map(|(k, v)| format!("{k:?}: {v}")).collect();
                format!("{{{}}}", items.join(", "))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = yaml::parse(&text, "fuzz.yaml");
        load_text(&text).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn arbitrary_compose_shapes_never_panic(body in yaml_tree(), svc in yaml_tree()) {
        let text = format!("services: {{web: {svc}, db: {{image: x}}}}\nx-extra: {body}\n");
        load_text(&text).map_err(TestCaseError::fail)?;
        load_text(&body).map_err(TestCaseError::fail)?;
    }

    /// Large projects validate and canonicalize in parallel: canonical form then sees
    /// documents the schema is about to refuse, and must not panic on them either.
    #[test]
    fn arbitrary_service_in_a_large_project_never_panics(svc in yaml_tree()) {
        let mut text = format!("services:\n  web: {svc}\n");
        for i in 0..70 {
            text.push_str(&format!("  s{i}: {{image: x}}\n"));
        }
        load_text(&text).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn block_style_text_never_panics(lines in prop::collection::vec(
        (0usize..4, prop::sample::select(KEYS), prop::sample::select(SCALARS), any::<bool>()), 0..20)) {
        let mut text = String::new();
        for (indent, k, v, seq) in lines {
            let pad = "  ".repeat(indent);
            if seq { text.push_str(&format!("{pad}- {v}\n")); } else { text.push_str(&format!("{pad}{k}: {v}\n")); }
        }
        load_text(&text).map_err(TestCaseError::fail)?;
    }
}
