//! Docker's `User` resolution against the container's own /etc/passwd and /etc/group
//! (runc's GetExecUser): `""`, `name`, `uid`, `name:group`, `uid:gid`; numeric ids need no
//! entry; names that match nothing are Docker's errors, word for word.

/// Who the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (setgroups).
    pub groups: Vec<u32>,
    /// For `HOME` when the env has none.
    pub home: String,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|l| {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = l.split(':').collect();
        Some(PasswdEntry {
            name: f.first()?,
            uid: f.get(2)?.parse().ok()?,
            gid: f.get(3)?.parse().ok()?,
            home: f.get(5).copied().unwrap_or(""),
        })
    })
}

fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    text.lines().filter_map(|l| {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = l.split(':').collect();
        Some(GroupEntry {
            name: f.first()?,
            gid: f.get(2)?.parse().ok()?,
            members: f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        })
    })
}

fn numeric(s: &str) -> Option<u32> {
    s.parse::<u32>().ok()
}

/// Resolves `user` (`name`, `uid`, `name:group`, `uid:gid`, or empty for root) and Docker's
/// `GroupAdd` against the container's passwd and group files (None: the file is absent).
pub fn resolve(
    user: &str,
    additional_groups: &[String],
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ExecUser, String> {
    let (user_arg, group_arg) = match user.split_once(':') {
        Some((u, g)) => (u, g),
        None => (user, ""),
    };
    let mut out = ExecUser {
        uid: 0,
        gid: 0,
        groups: Vec::new(),
        home: "/".into(),
    };
    let mut matched_name: Option<&str> = None;
    let wanted = if user_arg.is_empty() { "0" } else { user_arg };
    let entry = passwd.and_then(|p| {
        passwd_entries(p).find(|e| e.name == wanted || numeric(wanted) == Some(e.uid))
    });
    match entry {
        Some(e) => {
            out.uid = e.uid;
            out.gid = e.gid;
            out.home = e.home.to_string();
            matched_name = Some(e.name);
        }
        None => match numeric(wanted) {
            Some(uid) => out.uid = uid,
            None => {
                return Err(format!(
                    "unable to find user {wanted}: no matching entries in passwd file"
                ))
            }
        },
    }
    if !group_arg.is_empty() {
        let found = group.and_then(|g| {
            group_entries(g).find(|e| e.name == group_arg || numeric(group_arg) == Some(e.gid))
        });
        out.gid = match (found, numeric(group_arg)) {
            (Some(e), _) => e.gid,
            (None, Some(gid)) => gid,
            (None, None) => {
                return Err(format!(
                    "unable to find group {group_arg}: no matching entries in group file"
                ))
            }
        };
    } else if let (Some(name), Some(g)) = (matched_name, group) {
        // Without an explicit group, the groups that list the user as a member.
        out.groups = group_entries(g)
            .filter(|e| e.members.contains(&name))
            .map(|e| e.gid)
            .collect();
    }
    for extra in additional_groups {
        let found = group.and_then(|g| {
            group_entries(g).find(|e| e.name == extra || numeric(extra) == Some(e.gid))
        });
        let gid = match (found, numeric(extra)) {
            (Some(e), _) => e.gid,
            (None, Some(gid)) => gid,
            (None, None) => {
                return Err(format!(
                    "Unable to find group {extra}: no matching entries in group file"
                ))
            }
        };
        if !out.groups.contains(&gid) {
            out.groups.push(gid);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
        app:x:1000:1001:App:/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:app,other\nappgrp:x:1001:\nnogroup:x:65534:\n";

    fn r(user: &str) -> Result<ExecUser, String> {
        resolve(user, &[], Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn empty_is_root_with_its_home() {
        let u = r("").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
    }

    #[test]
    fn names_and_numbers() {
        let u = r("nobody").unwrap();
        assert_eq!((u.uid, u.gid), (65534, 65534));
        let u = r("1000").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1001, "/home/app"));
        assert_eq!(u.groups, vec![10], "membership in wheel");
        let u = r("4242").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
        let u = r("4242:4343").unwrap();
        assert_eq!((u.uid, u.gid), (4242, 4343));
        let u = r("app:nogroup").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 65534));
        assert!(u.groups.is_empty(), "explicit group: no membership groups");
    }

    #[test]
    fn unknown_names_are_dockers_errors() {
        assert_eq!(
            r("ghost").unwrap_err(),
            "unable to find user ghost: no matching entries in passwd file"
        );
        assert_eq!(
            r("app:ghosts").unwrap_err(),
            "unable to find group ghosts: no matching entries in group file"
        );
        assert_eq!(
            resolve("ghost", &[], None, None).unwrap_err(),
            "unable to find user ghost: no matching entries in passwd file"
        );
        assert_eq!(
            resolve("", &["ghosts".into()], Some(PASSWD), Some(GROUP)).unwrap_err(),
            "Unable to find group ghosts: no matching entries in group file"
        );
    }

    #[test]
    fn additional_groups_by_name_and_number() {
        let u = resolve(
            "nobody",
            &["wheel".into(), "77".into()],
            Some(PASSWD),
            Some(GROUP),
        )
        .unwrap();
        assert_eq!(u.groups, vec![10, 77]);
    }

    #[test]
    fn no_files_numeric_still_works() {
        let u = resolve("12:34", &[], None, None).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (12, 34, "/"));
    }
}
