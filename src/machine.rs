//! Facts of the machine the tool runs on that a default depends on (today: how much memory
//! DuckDB may be given). Read from Linux's `/proc` and cgroup files; elsewhere unknown.

/// The memory this process may use, in bytes: the machine's (`MemTotal` in `/proc/meminfo`),
/// or the limit of its cgroup where that is lower (cgroup v2 `memory.max`, v1
/// `memory.limit_in_bytes`), as in a container. `None` where neither can be read.
pub fn usable_memory_bytes() -> Option<u64> {
    let total = total_memory_bytes();
    let cgroup = cgroup_limit_bytes();
    match (total, cgroup) {
        (Some(t), Some(c)) => Some(t.min(c)),
        (t, c) => t.or(c),
    }
}

/// The machine's memory (`MemTotal` in `/proc/meminfo`), in bytes.
pub fn total_memory_bytes() -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_total_bytes(&text))
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
fn mem_total_bytes(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The memory limit of this process's cgroup, if it has one (`max` or an unset v1 limit, a
/// number near `u64::MAX`, mean none).
fn cgroup_limit_bytes() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in cgroup.lines() {
        // "0::/path" is v2; "N:memory:/path" (or a list holding memory) is v1.
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let file = if controllers.is_empty() {
            format!("/sys/fs/cgroup{path}/memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")
        } else {
            continue;
        };
        if let Some(limit) = std::fs::read_to_string(file)
            .ok()
            .and_then(|text| limit_bytes(&text))
        {
            return Some(limit);
        }
    }
    None
}

/// A cgroup limit file's value: `max` and v1's "unlimited" (within a page of `i64::MAX`) are
/// none.
fn limit_bytes(text: &str) -> Option<u64> {
    let value: u64 = text.trim().parse().ok()?;
    (value < (i64::MAX as u64) / 2).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_total_is_read_in_kib() {
        let text = "MemTotal:       24683584 kB\nMemFree:         1000 kB\n";
        assert_eq!(mem_total_bytes(text), Some(24_683_584 * 1024));
        assert_eq!(mem_total_bytes("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn an_unlimited_cgroup_is_no_limit() {
        assert_eq!(limit_bytes("max\n"), None);
        assert_eq!(limit_bytes("9223372036854771712\n"), None);
        assert_eq!(limit_bytes("2147483648\n"), Some(2 << 30));
    }

    #[test]
    fn this_machine_has_memory_to_read() {
        if cfg!(target_os = "linux") {
            let bytes = usable_memory_bytes().expect("Linux has /proc/meminfo");
            assert!(bytes > 64 << 20, "{bytes}");
        }
    }
}
