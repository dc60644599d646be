//! Who may change the system through hlsys, and what a user who may not is told.
//!
//! hlsys makes no decision of its own: the commands that start, stop or reload ask
//! systemd, which authorises root and, through polkit, whoever the installed rules allow
//! (dbus/50-hlsys.rules: the members of group [`GROUP`], for the units of the default
//! prefix). A refusal comes back as a D-Bus error ([`systemd::AccessDenied`]) and becomes
//! one message here: who may, and how to add a user. `enable`/`disable` change the config
//! itself, which only root may write (see README, "Security"): for them the refusal comes
//! from the file system, before anything is changed.

use std::path::Path;
use std::process::ExitCode;

use crate::systemd;
use hlsys_core::exit::EXIT_FAILURE;

/// The group the shipped polkit rule authorises.
pub const GROUP: &str = "homelab";
/// Where the Debian package installs the rule (dbus/50-hlsys.rules).
pub const RULE_PATH: &str = "/usr/share/polkit-1/rules.d/50-hlsys.rules";
/// The unit prefix the shipped rule covers (the config's default `unit_prefix`).
pub const RULE_PREFIX: &str = "homelab";

/// The lines a user gets when systemd refused `verb` (start, stop, restart, reload) on
/// units named with `prefix`; `denied` says how polkit answered.
pub fn denied_message(verb: &str, prefix: &str, denied: &systemd::AccessDenied) -> String {
    let why = if denied.wants_authentication() {
        "polkit would need an administrator's password, and no authentication agent could ask for it"
    } else {
        "polkit did not authorise this user"
    };
    let mut m = format!(
        "hlsys {verb}: permission denied by systemd ({why}).\n\
         Allowed: root, and the members of group \"{GROUP}\" once the polkit rule hlsys ships is \
         installed ({RULE_PATH}); it lets them start, stop, restart and reload {RULE_PREFIX}.target, \
         {RULE_PREFIX}-*.target and {RULE_PREFIX}-*.service, and reload systemd (hlsys reload).\n\
         To allow a user: sudo adduser USER {GROUP} (polkit sees it at once). Or run it as root: sudo hlsys {verb} …"
    );
    if prefix != RULE_PREFIX {
        m.push_str(&format!(
            "\nNote: unit_prefix is \"{prefix}\"; the shipped rule covers \"{RULE_PREFIX}\" only: copy it to \
             /etc/polkit-1/rules.d/ with the prefix changed (see README, \"Running hlsys without root\")."
        ));
    }
    m
}

/// Turns a refusal by systemd (AccessDenied, InteractiveAuthorizationRequired) into
/// [`denied_message`] and exit status 1; other results go on as they are.
pub fn map_denied(verb: &str, prefix: &str, r: anyhow::Result<ExitCode>) -> anyhow::Result<ExitCode> {
    let Err(e) = r else { return r };
    match e.chain().find_map(|c| c.downcast_ref::<systemd::AccessDenied>()) {
        Some(denied) => {
            eprintln!("{}", denied_message(verb, prefix, denied));
            Ok(ExitCode::from(EXIT_FAILURE))
        }
        None => Err(e),
    }
}

/// Whether this process may create or replace `file`: write access to its directory,
/// or, while that does not exist yet, to the nearest ancestor that does (where the
/// directory would be created). Checked with the real uid, as the kernel will.
pub fn may_write(file: &Path) -> bool {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d.exists() {
            return nix::unistd::access(d, nix::unistd::AccessFlags::W_OK).is_ok();
        }
        dir = d.parent();
    }
    false
}

/// The refusal of `enable`/`disable` for a user who cannot write the drop-in: the choice
/// changes what root starts at boot, so it belongs to whoever owns the config.
pub fn config_write_refusal(verb: &str, dropin: &Path, names: &[String]) -> String {
    format!(
        "hlsys {verb}: only root may do this: the choice is recorded in {}, part of the config (it decides \
         what starts at boot, as root), which this user cannot write.\n\
         Run it as root: sudo hlsys {verb} {}\n\
         (Members of group \"{GROUP}\" may start and stop stacks without root: hlsys start|stop|restart.)",
        dropin.display(),
        names.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(error: &str) -> systemd::AccessDenied {
        systemd::AccessDenied {
            method: "EnqueueUnitJob".into(),
            error: error.into(),
        }
    }

    #[test]
    fn the_message_says_who_may_and_how_to_add_a_user() {
        let m = denied_message("start", "homelab", &denied("org.freedesktop.DBus.Error.AccessDenied"));
        assert!(
            m.starts_with("hlsys start: permission denied by systemd (polkit did not authorise"),
            "{m}"
        );
        assert!(m.contains("group \"homelab\"") && m.contains(RULE_PATH), "{m}");
        assert!(m.contains("sudo adduser USER homelab"), "{m}");
        assert!(m.contains("homelab-*.service"), "{m}");
        assert!(!m.contains("Note:"), "the default prefix needs no note: {m}");
        assert!(!m.contains("org.freedesktop"), "no raw D-Bus error name: {m}");
        let m = denied_message(
            "reload",
            "lab",
            &denied("org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"),
        );
        assert!(m.contains("no authentication agent could ask"), "{m}");
        assert!(m.starts_with("hlsys reload: permission denied"), "{m}");
        assert!(m.contains("unit_prefix is \"lab\""), "{m}");
    }

    #[test]
    fn only_access_denied_becomes_the_message() {
        let e = anyhow::Error::new(denied("org.freedesktop.DBus.Error.AccessDenied")).context("starting");
        assert_eq!(
            map_denied("start", "homelab", Err(e)).unwrap(),
            ExitCode::from(EXIT_FAILURE)
        );
        let other = anyhow::anyhow!("cannot connect to the system D-Bus");
        assert!(map_denied("start", "homelab", Err(other)).is_err());
    }

    #[test]
    fn write_access_is_judged_on_the_directory_or_its_nearest_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        assert!(may_write(&dir.path().join("hlsys.toml.d/50-hlsys-enable.toml")));
        assert!(may_write(&dir.path().join("a/b/c/file")));
        // As root every directory is writable, so only the unprivileged case can be told.
        if !nix::unistd::getuid().is_root() {
            assert!(!may_write(Path::new("/hlsys-no-such-dir/x")));
        }
    }
}
