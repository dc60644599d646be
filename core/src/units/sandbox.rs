//! The sandbox of every generated service (stack units and the oneshots): systemd.exec(5)
//! settings that still let `hlsys` and `docker compose` talk to the Docker socket and read
//! the tree, and take away everything else a root process could reach. One list, so the
//! units, hlsys-generator(8) and the tests name the same directives.
//!
//! What the processes need, and why each exception is there:
//! - the Docker socket and systemd's notify/D-Bus sockets: `AF_UNIX` only (filesystem
//!   sockets work across network namespaces, and connecting to one is not a write, so
//!   `PrivateNetwork=` and `ProtectSystem=strict` leave them usable);
//! - a writable home for the Docker CLI, which keeps `~/.docker` (config, contexts, buildx
//!   state): `StateDirectory=hlsys`, i.e. /var/lib/hlsys, owned by root and 0700 — not
//!   /root (hidden by `ProtectHome=`), and not a RuntimeDirectory, which is emptied at
//!   every stop and would lose registry credentials put there;
//! - the GPU check reads /dev/nvidia*: it keeps the host's devices (no `PrivateDevices=`).
//!
//! No `ReadWritePaths=`: Compose writes nothing but its home and /tmp (private). No
//! capabilities: everything it opens is root's own (socket, tree, state directory), and
//! root stays root inside `PrivateUsers=` (only other users map to nobody).
//! `SystemCallFilter=` also drops `@resources`; with `SystemCallErrorNumber=EPERM` the Go
//! runtime's attempt to raise RLIMIT_NOFILE fails quietly (Compose ran in the e2e tests).

use std::path::Path;

use crate::config::scope::Scope;
use crate::units::unit_file::Section;

/// The supervisor's home (`StateDirectory=hlsys`): the Docker CLI's `~/.docker`.
pub const STATE_DIR: &str = "/var/lib/hlsys";

/// PATH of every generated service: fixed, never taken from an env file.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Which service is being sandboxed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A stack's supervisor (`hlsys supervise`), which runs `docker compose`.
    Stack,
    /// A oneshot that only talks to Docker or systemd (networks, tree).
    Oneshot,
    /// The GPU check: like a oneshot, but it looks at the host's GPU devices.
    GpuCheck,
    /// The notifier (`hlsys notify`): like a oneshot, but it reaches the notification
    /// targets over IP: the one unit with network access (no `PrivateNetwork=`, no
    /// `IPAddressDeny=`, `AF_INET`/`AF_INET6` besides `AF_UNIX`).
    Notify,
    /// `hlsys metrics --serve` behind the metrics socket: like a oneshot (it opens no
    /// socket: the connection is its stdin/stdout), but without `IPAddressDeny=`, which
    /// would apply to the connection systemd hands it.
    Served,
}

/// Where `ProtectHome=` hides things: a config, tree or binary below one of these is
/// still read there (read-only), so the units keep working.
const HOME_DIRS: [&str; 3] = ["/home", "/root", "/run/user"];

/// Whether any of `paths` lies in a home directory (see [`HOME_DIRS`]).
pub fn under_home<'p>(paths: impl IntoIterator<Item = &'p Path>) -> bool {
    paths.into_iter().any(|p| HOME_DIRS.iter().any(|h| p.starts_with(h)))
}

/// `(key, value)` of every setting for `kind`, in the order they are written;
/// `reads_home`: hlsys has to read something below a home directory (see [`under_home`]).
pub fn directives(kind: Kind, reads_home: bool) -> Vec<(&'static str, &'static str)> {
    let mut d = vec![
        // The environment is hlsys's, not an env file's: PATH, LD_PRELOAD or DOCKER_HOST
        // there would steer a root process. HOME is the state directory (see above).
        (
            "Environment",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ),
        ("Environment", "LANG=C.UTF-8"),
        ("Environment", "HOME=/var/lib/hlsys"),
        ("StateDirectory", "hlsys"),
        ("StateDirectoryMode", "0700"),
        ("UMask", "0077"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("ProtectSystem", "strict"),
        ("ProtectHome", if reads_home { "read-only" } else { "yes" }),
        ("PrivateTmp", "yes"),
        ("PrivateNetwork", "yes"),
        ("IPAddressDeny", "any"),
        ("RestrictAddressFamilies", "AF_UNIX"),
        ("PrivateUsers", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("ProtectClock", "yes"),
        ("ProtectHostname", "yes"),
        ("ProtectProc", "invisible"),
        ("RestrictNamespaces", "yes"),
        ("RestrictRealtime", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("RemoveIPC", "yes"),
        ("SystemCallArchitectures", "native"),
        ("SystemCallFilter", "@system-service"),
        ("SystemCallFilter", "~@privileged @resources"),
        // A call outside the filter fails instead of killing the process: a new Docker
        // CLI probing a syscall then reports an error rather than dying with SIGSYS.
        ("SystemCallErrorNumber", "EPERM"),
    ];
    match kind {
        Kind::Notify => {
            d.retain(|(k, _)| !matches!(*k, "PrivateNetwork" | "IPAddressDeny" | "RestrictAddressFamilies"));
            d.push(("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"));
        }
        Kind::Served => d.retain(|(k, _)| *k != "IPAddressDeny"),
        _ => {}
    }
    if kind != Kind::GpuCheck {
        d.push(("PrivateDevices", "yes"));
        // /proc/driver/nvidia is what the GPU check reads; the others need only their own
        // processes.
        d.push(("ProcSubset", "pid"));
    }
    d
}

/// The user scope's home for the Docker CLI. A user manager's `StateDirectory=` (and `%S`)
/// is `$XDG_CONFIG_HOME`, measured in systemd 252: `hlsys` there would be the config's own
/// directory, so the state gets a directory of its own beside it.
pub const USER_STATE: &str = "hlsys-state";
pub const USER_HOME: &str = "HOME=%S/hlsys-state";

/// The user's rootless dockerd (`%t`: `$XDG_RUNTIME_DIR`), fixed like PATH.
pub const USER_DOCKER_HOST: &str = "DOCKER_HOST=unix://%t/docker.sock";

/// [`directives`] for a manager of `scope`. A user manager runs the units as the user,
/// without privileges, so:
/// - HOME is the user's state directory, and DOCKER_HOST the rootless dockerd;
/// - `ProtectHome=read-only` always: the socket is below /run/user and the tree in the
///   home (`yes` would hide both);
/// - no `IPAddressDeny=`: it needs a BPF program on the unit's cgroup, which only a
///   privileged manager can attach (`PrivateNetwork=` still takes the network away);
/// - no `RemoveIPC=`: it acts only on units with `User=`, which a user manager has not;
/// - no `ProtectKernelLogs=`: a user manager fails the unit with 226/NAMESPACE ("Failed
///   to mount …/inaccessible/fifo to …/proc/kmsg", systemd 252); `PrivateDevices=`
///   still hides /dev/kmsg, and an unprivileged user has no CAP_SYSLOG anyway;
/// - `KeyringMode=private`: a user manager's default is `inherit` (the manager's own
///   session keyring), the system manager's already `private`.
///
/// The namespace settings work because `PrivateUsers=yes` gives the user manager the
/// user namespace it sets them up in.
pub fn directives_for(kind: Kind, reads_home: bool, scope: Scope) -> Vec<(&'static str, &'static str)> {
    let d = directives(kind, reads_home);
    if scope == Scope::System {
        return d;
    }
    let mut out = Vec::with_capacity(d.len() + 1);
    for (k, v) in d {
        match (k, v) {
            ("Environment", v) if v.starts_with("HOME=") => {
                out.push((k, USER_HOME));
                out.push((k, USER_DOCKER_HOST));
            }
            ("ProtectHome", _) => out.push((k, "read-only")),
            ("StateDirectory", _) => out.push((k, USER_STATE)),
            ("IPAddressDeny" | "RemoveIPC" | "ProtectKernelLogs", _) => {}
            ("UMask", v) => {
                out.push((k, v));
                out.push(("KeyringMode", "private"));
            }
            kv => out.push(kv),
        }
    }
    out
}

/// Writes the sandbox for `kind` under a manager of `scope` into a `[Service]` section.
pub fn harden(service: &mut Section, kind: Kind, reads_home: bool, scope: Scope) {
    for (key, value) in directives_for(kind, reads_home, scope) {
        service.set(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_gpu_check_sees_devices() {
        let has = |k: Kind, key: &str| directives(k, false).iter().any(|(d, _)| *d == key);
        assert!(has(Kind::Stack, "PrivateDevices") && has(Kind::Oneshot, "PrivateDevices"));
        assert!(!has(Kind::GpuCheck, "PrivateDevices"));
        // Only the notifier reaches the network.
        for k in [Kind::Stack, Kind::Oneshot, Kind::GpuCheck, Kind::Served] {
            assert!(has(k, "PrivateNetwork"), "{k:?}");
        }
        assert!(!has(Kind::Notify, "PrivateNetwork") && !has(Kind::Notify, "IPAddressDeny"));
        let fams: Vec<_> = directives(Kind::Notify, false)
            .into_iter()
            .filter(|(k, _)| *k == "RestrictAddressFamilies")
            .collect();
        assert_eq!(fams, [("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6")]);
        for k in [Kind::Stack, Kind::Oneshot, Kind::GpuCheck] {
            assert!(has(k, "NoNewPrivileges") && has(k, "SystemCallFilter"));
        }
    }

    #[test]
    fn a_tree_in_a_home_directory_stays_readable() {
        let home = |paths: &[&str]| under_home(paths.iter().map(Path::new));
        assert!(home(&["/srv/compose", "/home/ann/lab"]));
        assert!(home(&["/root/hlsys.toml"]) && !home(&["/srv/compose", "/homework", "/etc/hlsys/hlsys.toml"]));
        let protect = |h| {
            directives(Kind::Stack, h)
                .into_iter()
                .find(|(k, _)| *k == "ProtectHome")
                .unwrap()
                .1
        };
        assert_eq!((protect(false), protect(true)), ("yes", "read-only"));
    }

    #[test]
    fn the_user_scope_drops_only_what_a_user_manager_cannot_apply() {
        for k in [Kind::Stack, Kind::Oneshot, Kind::GpuCheck, Kind::Notify, Kind::Served] {
            let sys = directives(k, false);
            assert_eq!(directives_for(k, false, Scope::System), sys);
            let user = directives_for(k, false, Scope::User);
            assert!(user.contains(&("Environment", USER_HOME)), "{k:?}");
            assert!(user.contains(&("Environment", USER_DOCKER_HOST)), "{k:?}");
            assert!(user.contains(&("ProtectHome", "read-only")), "{k:?}");
            assert!(user.contains(&("KeyringMode", "private")), "{k:?}");
            let gone: Vec<_> = sys.iter().filter(|d| !user.contains(d)).map(|d| d.0).collect();
            let want: &[&str] = match k {
                Kind::Notify | Kind::Served => &[
                    "Environment",
                    "StateDirectory",
                    "ProtectHome",
                    "ProtectKernelLogs",
                    "RemoveIPC",
                ],
                _ => &[
                    "Environment",
                    "StateDirectory",
                    "ProtectHome",
                    "IPAddressDeny",
                    "ProtectKernelLogs",
                    "RemoveIPC",
                ],
            };
            assert_eq!(gone, want, "{k:?}");
        }
    }

    #[test]
    fn the_fixed_environment_matches_the_constants() {
        let env: Vec<&str> = directives(Kind::Stack, false)
            .into_iter()
            .filter(|(k, _)| *k == "Environment")
            .map(|(_, v)| v)
            .collect();
        assert!(env.contains(&format!("PATH={PATH}").as_str()), "{env:?}");
        assert!(env.contains(&format!("HOME={STATE_DIR}").as_str()), "{env:?}");
    }
}
