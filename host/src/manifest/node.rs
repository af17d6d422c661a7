//! The name this node writes into each row's `node` column.
//! Configured, else the Fly region, else the host name.

/// `configured` if set, else `FLY_REGION` (when non-empty), else the kernel's host name.
pub(crate) fn node_name(configured: Option<&str>) -> String {
    let from_env = std::env::var("FLY_REGION").ok();
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    choose(configured, from_env.as_deref(), hostname.as_deref())
}

/// A name for one opened manifest handle, unique across nodes and restarts: the node's name,
/// the process and the time it was opened.
pub(crate) fn session_name(node: &str) -> String {
    let opened = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{node}/{}/{opened:x}", std::process::id())
}

fn choose(configured: Option<&str>, fly_region: Option<&str>, hostname: Option<&str>) -> String {
    [configured, fly_region, hostname]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|name| !name.is_empty())
        .unwrap_or("unknown")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::choose;

    #[test]
    fn configured_beats_region_beats_hostname() {
        assert_eq!(choose(Some("edge-1"), Some("ams"), Some("box\n")), "edge-1");
        assert_eq!(choose(None, Some("ams"), Some("box\n")), "ams");
        assert_eq!(choose(None, Some(""), Some("box\n")), "box");
        assert_eq!(choose(None, None, None), "unknown");
    }
}
