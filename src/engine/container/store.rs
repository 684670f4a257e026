//! A container's record as the daemon keeps it (`<root>/containers/<id>/config.v2.json`),
//! ids, Docker-style names, and the small /proc helpers the supervisor needs.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use bollard_stubs::models::{ContainerConfig, Health, HostConfig, MountPoint};
use serde::{Deserialize, Serialize};

use crate::engine::image::fsutil::write_atomic;
use crate::engine::runtime::spec::{ContainerSpec, ShimState};

use super::EngineError;

/// The daemon's file in each container's state directory.
pub const CONFIG_FILE: &str = "config.v2.json";

/// Docker's zero time, shown for StartedAt/FinishedAt of a container that never ran.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Running as Docker's `State.Running` means it (a restarting container counts).
    pub fn is_active(self) -> bool {
        matches!(self, Status::Running | Status::Restarting)
    }
}

/// How the container gets its network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkChoice {
    /// A fresh namespace with only `lo` (`none`, and `bridge`/`default` until networks
    /// arrive), at `<run_root>/netns/<id>` while the container runs.
    Own,
    Host,
    /// `container:<id>`: the other container's namespace (resolved when this one starts).
    Container(String),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunState {
    pub status: Status,
    #[serde(default)]
    pub pid: i64,
    #[serde(default)]
    pub exit_code: i64,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
}

/// Everything the daemon remembers about one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    /// RFC 3339 with nanoseconds.
    pub created: String,
    /// The image as the user named it (`Config.Image`).
    pub image: String,
    /// `sha256:<hex>`.
    pub image_id: String,
    /// The merged config (image defaults applied), as inspect shows it.
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// The process: `Path` and `Args` as inspect shows them.
    pub path: String,
    pub args: Vec<String>,
    pub network: NetworkChoice,
    /// What the shim is given at each start (the network namespace is filled in then).
    pub spec: ContainerSpec,
    pub state: RunState,
    #[serde(default)]
    pub restart_count: i64,
    /// Docker's HasBeenManuallyStopped: stopped or killed through the API.
    #[serde(default)]
    pub manually_stopped: bool,
    #[serde(default)]
    pub health: Option<Health>,
    /// The shim of the current (or last) run.
    #[serde(default)]
    pub shim: Option<ShimState>,
    /// Inspect's `Mounts`.
    #[serde(default)]
    pub mounts: Vec<MountPoint>,
}

impl Record {
    pub fn state_dir(&self) -> &Path {
        &self.spec.state_dir
    }

    pub fn bundle(&self) -> &Path {
        &self.spec.bundle
    }

    /// Writes the record atomically.
    pub fn save(&self) -> Result<(), EngineError> {
        let bytes = serde_json::to_vec(self)
            .map_err(|e| EngineError::Internal(format!("container {}: {e}", self.id)))?;
        write_atomic(&self.state_dir().join(CONFIG_FILE), &bytes, 0o600)
            .map_err(|e| EngineError::Internal(format!("container {}: {e}", self.id)))
    }

    pub fn load(dir: &Path) -> Result<Record, EngineError> {
        let path = dir.join(CONFIG_FILE);
        let bytes = fs::read(&path)
            .map_err(|e| EngineError::Internal(format!("reading {}: {e}", path.display())))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| EngineError::Internal(format!("{}: {e}", path.display())))
    }
}

/// 64 random hex digits, as Docker's ids.
pub fn random_id() -> Result<String, EngineError> {
    let mut buf = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| EngineError::Internal(format!("reading /dev/urandom: {e}")))?;
    Ok(hex::encode(buf))
}

/// A small random number (for name generation).
pub fn random_u32() -> u32 {
    let mut buf = [0u8; 4];
    if fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_err()
    {
        // Only names depend on this; the clock is random enough for them.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        return nanos ^ std::process::id();
    }
    u32::from_le_bytes(buf)
}

const LEFT: &[&str] = &[
    "admiring",
    "adoring",
    "affectionate",
    "agitated",
    "amazing",
    "angry",
    "awesome",
    "beautiful",
    "blissful",
    "bold",
    "boring",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "competent",
    "condescending",
    "confident",
    "cool",
    "cranky",
    "crazy",
    "dazzling",
    "determined",
    "distracted",
    "dreamy",
    "eager",
    "ecstatic",
    "elastic",
    "elated",
    "elegant",
    "eloquent",
    "epic",
    "exciting",
    "fervent",
    "festive",
    "flamboyant",
    "focused",
    "friendly",
    "frosty",
    "funny",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "great",
    "happy",
    "hardcore",
    "heuristic",
    "hopeful",
    "hungry",
    "infallible",
    "inspiring",
    "intelligent",
    "interesting",
    "jolly",
    "jovial",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "musing",
    "mystifying",
    "naughty",
    "nervous",
    "nice",
    "nifty",
    "nostalgic",
    "objective",
    "optimistic",
    "peaceful",
    "pedantic",
    "pensive",
    "practical",
    "priceless",
    "quirky",
    "quizzical",
    "recursing",
    "relaxed",
    "reverent",
    "romantic",
    "sad",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "strange",
    "stupefied",
    "suspicious",
    "sweet",
    "tender",
    "thirsty",
    "trusting",
    "unruffled",
    "upbeat",
    "vibrant",
    "vigilant",
    "vigorous",
    "wizardly",
    "wonderful",
    "xenodochial",
    "youthful",
    "zealous",
    "zen",
];

const RIGHT: &[&str] = &[
    "agnesi",
    "albattani",
    "allen",
    "archimedes",
    "ardinghelli",
    "babbage",
    "banach",
    "bardeen",
    "bartik",
    "bassi",
    "bell",
    "benz",
    "bhabha",
    "blackburn",
    "bohr",
    "booth",
    "borg",
    "bose",
    "brahmagupta",
    "brattain",
    "brown",
    "cannon",
    "carson",
    "cartwright",
    "cerf",
    "chandrasekhar",
    "chaplygin",
    "chatelet",
    "clarke",
    "cohen",
    "colden",
    "cori",
    "curie",
    "darwin",
    "davinci",
    "diffie",
    "dijkstra",
    "dirac",
    "driscoll",
    "dubinsky",
    "easley",
    "edison",
    "einstein",
    "elbakyan",
    "elgamal",
    "elion",
    "engelbart",
    "euclid",
    "euler",
    "faraday",
    "feistel",
    "fermat",
    "fermi",
    "feynman",
    "franklin",
    "galileo",
    "gates",
    "goldberg",
    "goldstine",
    "goldwasser",
    "golick",
    "goodall",
    "gould",
    "greider",
    "hamilton",
    "haslett",
    "hawking",
    "heisenberg",
    "hellman",
    "hermann",
    "herschel",
    "hertz",
    "hodgkin",
    "hofstadter",
    "hoover",
    "hopper",
    "hugle",
    "hypatia",
    "jackson",
    "jang",
    "jennings",
    "jepsen",
    "johnson",
    "joliot",
    "jones",
    "kalam",
    "kapitsa",
    "kare",
    "keldysh",
    "keller",
    "kepler",
    "khorana",
    "kilby",
    "kirch",
    "knuth",
    "kowalevski",
    "lalande",
    "lamarr",
    "lamport",
    "leakey",
    "leavitt",
    "lederberg",
    "lehmann",
    "lewin",
    "lichterman",
    "liskov",
    "lovelace",
    "lumiere",
    "mahavira",
    "margulis",
    "matsumoto",
    "maxwell",
    "mayer",
    "mccarthy",
    "mcclintock",
    "mclean",
    "mcnulty",
    "meitner",
    "mendel",
    "merkle",
    "mestorf",
    "mirzakhani",
    "montalcini",
    "moore",
    "morse",
    "moser",
    "murdock",
    "napier",
    "nash",
    "neumann",
    "newton",
    "nightingale",
    "nobel",
    "noether",
    "northcutt",
    "noyce",
    "panini",
    "pare",
    "pascal",
    "pasteur",
    "payne",
    "perlman",
    "pike",
    "poincare",
    "poitras",
    "proskuriakova",
    "ptolemy",
    "raman",
    "ramanujan",
    "ride",
    "ritchie",
    "robinson",
    "roentgen",
    "rosalind",
    "rubin",
    "saha",
    "sammet",
    "sanderson",
    "satoshi",
    "shamir",
    "shannon",
    "shaw",
    "shirley",
    "shockley",
    "shtern",
    "sinoussi",
    "snyder",
    "solomon",
    "spence",
    "stonebraker",
    "sutherland",
    "swanson",
    "swartz",
    "swirles",
    "taussig",
    "tesla",
    "tharp",
    "thompson",
    "torvalds",
    "tu",
    "turing",
    "varahamihira",
    "vaughan",
    "villani",
    "visvesvaraya",
    "volhard",
    "wescoff",
    "wilbur",
    "wiles",
    "williams",
    "williamson",
    "wilson",
    "wing",
    "wozniak",
    "wright",
    "wu",
    "yalow",
    "yonath",
    "zhukovsky",
];

/// A Docker-style `adjective_surname` name; `retry` > 0 appends a digit as Docker does.
pub fn generate_name(retry: u32) -> String {
    let r = random_u32();
    let left = LEFT[(r as usize) % LEFT.len()];
    let right = RIGHT[((r >> 16) as usize) % RIGHT.len()];
    // Docker's one exception.
    if left == "boring" && right == "wozniak" {
        return generate_name(retry);
    }
    if retry > 0 {
        format!("{left}_{right}{}", random_u32() % 10)
    } else {
        format!("{left}_{right}")
    }
}

/// Docker's rule for container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, an optional leading `/`.
pub fn validate_name(name: &str) -> Result<String, EngineError> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let mut chars = bare.chars();
    let ok = match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {
            bare.len() >= 2
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        }
        _ => false,
    };
    if ok {
        Ok(bare.to_string())
    } else {
        Err(EngineError::InvalidParameter(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

/// Field `n` (1-based, as proc(5) numbers them) of a /proc/<pid>/stat line; the comm field
/// (2) may hold spaces and parentheses, so counting starts after its last `)`.
pub fn stat_field(stat: &str, n: usize) -> Option<&str> {
    if n < 3 {
        return None;
    }
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(n - 3)
}

/// The process `pid` is alive (not a zombie: this machine's init reaps orphans lazily) and
/// is the one that started at `ticks`.
pub fn same_process(pid: i32, ticks: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    !matches!(stat_field(&stat, 3), Some("Z" | "X" | "x"))
        && stat_field(&stat, 22).and_then(|t| t.parse().ok()) == Some(ticks)
}

/// `<root>/containers`.
pub fn containers_dir(root: &Path) -> PathBuf {
    root.join("containers")
}

/// Now, as Docker writes times: RFC 3339, nanoseconds, UTC.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

pub fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        assert_eq!(validate_name("/web").unwrap(), "web");
        assert_eq!(validate_name("a.b_c-1").unwrap(), "a.b_c-1");
        assert!(validate_name("a").is_err());
        assert!(validate_name("_x").is_err());
        assert!(validate_name("x y").is_err());
        let n = generate_name(0);
        assert!(validate_name(&n).is_ok(), "{n}");
        assert!(n.contains('_'));
    }

    #[test]
    fn stat_fields_survive_odd_comm() {
        let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 12345 0";
        assert_eq!(stat_field(stat, 3), Some("S"));
        assert_eq!(stat_field(stat, 4), Some("1"));
        assert_eq!(stat_field(stat, 22), Some("12345"));
        let me = std::process::id() as i32;
        let own = fs::read_to_string("/proc/self/stat").unwrap();
        let t: u64 = stat_field(&own, 22).unwrap().parse().unwrap();
        assert!(same_process(me, t));
        assert!(!same_process(me, t + 1));
    }

    #[test]
    fn ids_are_64_hex() {
        let id = random_id().unwrap();
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
