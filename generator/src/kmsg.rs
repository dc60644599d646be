//! The generator's log: the kernel log, since the journal is not up while generators run
//! at boot. Bounded whatever the tree holds (hlsys.toml(5), LIMITS): each record
//! fits what the kernel takes in one write, and one run writes a bounded number of them.

use std::io::Write;

/// Most bytes of one record, its `<N>hlsys-generator[PID]: ` prefix and newline included:
/// the kernel refuses a /dev/kmsg write longer than its record limit (1,024 bytes, less
/// on older kernels), and the record would be lost. A longer message is cut, ending in `…`.
pub const MAX_RECORD_BYTES: usize = 976;
/// Most records one run writes, the last of them saying that more were left out. The run
/// itself logs far fewer ([`crate::run`] counts the skipped stacks past its own cap).
pub const MAX_RECORDS: usize = 200;

/// Logs to /dev/kmsg as `hlsys-generator[PID]: …` (the journal is not up while
/// generators run at boot), or to stderr when the kernel log is not writable.
pub struct KmsgLog {
    kmsg: Option<std::fs::File>,
    records: usize,
}

impl KmsgLog {
    pub fn open() -> KmsgLog {
        let kmsg = std::fs::OpenOptions::new().write(true).open("/dev/kmsg").ok();
        KmsgLog { kmsg, records: 0 }
    }

    /// `level`: syslog priority (3 error, 4 warning, 6 info, 7 debug).
    pub fn log(&mut self, level: u8, msg: &str) {
        if self.records >= MAX_RECORDS {
            return;
        }
        self.records += 1;
        if self.records == MAX_RECORDS {
            return self.write(
                4,
                "… more messages of this run were not logged (hlsys stacks shows every problem)",
            );
        }
        self.write(level, msg)
    }

    fn write(&mut self, level: u8, msg: &str) {
        let pid = std::process::id();
        // One record per line: a newline inside a message would forge a second record.
        let msg = msg.replace('\n', " ");
        let prefix = format!("<{level}>hlsys-generator[{pid}]: ");
        let msg = hlsys_core::capped::truncate(&msg, MAX_RECORD_BYTES - prefix.len() - 1);
        if let Some(k) = &mut self.kmsg {
            if k.write_all(format!("{prefix}{msg}\n").as_bytes()).is_ok() {
                return;
            }
        }
        eprintln!("hlsys-generator[{pid}]: {msg}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_stderr() -> KmsgLog {
        KmsgLog { kmsg: None, records: 0 }
    }

    #[test]
    fn records_are_counted_and_capped() {
        let mut log = to_stderr();
        for _ in 0..MAX_RECORDS + 50 {
            log.log(4, &"x".repeat(5000));
        }
        assert_eq!(log.records, MAX_RECORDS);
    }

    #[test]
    fn a_record_fits_the_kernel_limit() {
        let prefix = format!("<4>hlsys-generator[{}]: ", u32::MAX);
        let cut =
            hlsys_core::capped::truncate("é".repeat(3000).as_str(), MAX_RECORD_BYTES - prefix.len() - 1).into_owned();
        assert!(prefix.len() + cut.len() < MAX_RECORD_BYTES);
        assert!(cut.ends_with('…'));
    }
}
