//! The generator's log: the kernel log, since the journal is not up while generators run
//! at boot.

use std::io::Write;

/// Logs to /dev/kmsg as `hlsys-generator[PID]: …` (the journal is not up while
/// generators run at boot), or to stderr when the kernel log is not writable.
pub struct KmsgLog {
    kmsg: Option<std::fs::File>,
}

impl KmsgLog {
    pub fn open() -> KmsgLog {
        let kmsg = std::fs::OpenOptions::new().write(true).open("/dev/kmsg").ok();
        KmsgLog { kmsg }
    }

    /// `level`: syslog priority (3 error, 4 warning, 6 info, 7 debug).
    pub fn log(&mut self, level: u8, msg: &str) {
        let pid = std::process::id();
        // One record per line: a newline inside a message would forge a second record.
        let msg = msg.replace('\n', " ");
        if let Some(k) = &mut self.kmsg {
            if k.write_all(format!("<{level}>hlsys-generator[{pid}]: {msg}\n").as_bytes())
                .is_ok()
            {
                return;
            }
        }
        eprintln!("hlsys-generator[{pid}]: {msg}");
    }
}
