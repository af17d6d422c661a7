//! fly.toml, litefs.yml, caje.fly.toml and the Dockerfile name the same ports, paths and
//! commands; caje.toml and caje.fly.toml load through caje's own loader.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use caje::admin::{Access, routes};
use caje::config::Config;
use caje::manifest::JournalMode;
use http::Method;
use serde_norway::Value as Yaml;

use crate::dockerfile::Dockerfile;
use crate::{read, repo};

/// Every config file of the repository, and what checks it. A new one must be added here (and
/// checked), or `every_config_file_is_checked_here` fails.
const CHECKED: [&str; 4] = [
    "caje.toml",            // loads with Config::load; the origins the policies need
    "litefs.yml",           // against fly.toml and caje.fly.toml here; run by the litefs tests
    "deploy/fly.toml",      // against the others here
    "deploy/caje.fly.toml", // loads with Config::load; against the others here
];

/// The deployment as it ships.
pub struct Deployment {
    pub fly: toml::Value,
    pub litefs: Yaml,
    pub caje: Config,
    pub dockerfile: Dockerfile,
}

impl Deployment {
    pub fn load() -> Deployment {
        Deployment {
            fly: toml::from_str(&read("deploy/fly.toml")).expect("deploy/fly.toml is TOML"),
            litefs: serde_norway::from_str(&read("litefs.yml")).expect("litefs.yml is YAML"),
            caje: Config::load(&repo().join("deploy/caje.fly.toml"))
                .unwrap_or_else(|err| panic!("deploy/caje.fly.toml does not load:\n{err}")),
            dockerfile: Dockerfile::parse(&read("deploy/Dockerfile")),
        }
    }

    /// A value of fly.toml by its dotted path.
    pub fn fly(&self, path: &str) -> &toml::Value {
        path.split('.')
            .try_fold(&self.fly, |value, key| value.get(key))
            .unwrap_or_else(|| panic!("deploy/fly.toml has no {path}"))
    }

    /// A string of litefs.yml by its dotted path.
    pub fn litefs(&self, path: &str) -> &str {
        path.split('.')
            .try_fold(&self.litefs, |value, key| value.get(key))
            .and_then(Yaml::as_str)
            .unwrap_or_else(|| panic!("litefs.yml has no string {path}"))
    }

    /// The command LiteFS runs once the node is ready (`exec` as one string or a list of `cmd`s).
    pub fn litefs_exec(&self) -> String {
        let exec = self.litefs.get("exec").expect("litefs.yml has an exec");
        if let Some(command) = exec.as_str() {
            return command.to_owned();
        }
        let commands = exec.as_sequence().expect("exec is a string or a list");
        assert_eq!(commands.len(), 1, "litefs.yml runs one command: caje");
        commands[0]
            .get("cmd")
            .and_then(Yaml::as_str)
            .expect("exec's entry has a cmd")
            .to_owned()
    }
}

fn port(addr: &str) -> u16 {
    let (_, port) = addr.rsplit_once(':').expect("an address is host:port");
    port.parse()
        .unwrap_or_else(|_| panic!("no port in {addr:?}"))
}

#[test]
fn fly_sends_traffic_to_the_port_caje_listens_on() {
    let deployment = Deployment::load();
    let internal_port = deployment.fly("http_service.internal_port").as_integer();
    assert_eq!(
        internal_port,
        Some(i64::from(deployment.caje.listen.port()))
    );
    // Fly's proxy connects to the machine's private address, never to loopback.
    assert!(
        deployment.caje.listen.ip().is_unspecified(),
        "listen on 0.0.0.0, not {}",
        deployment.caje.listen
    );
}

#[test]
fn one_volume_holds_the_litefs_data_and_the_cache() {
    let deployment = Deployment::load();
    let mounts = deployment.fly("mounts");
    assert!(
        mounts.is_table(),
        "one [mounts] table, one volume per machine"
    );
    let volume = Path::new(deployment.fly("mounts.destination").as_str().unwrap());
    let litefs_data = Path::new(deployment.litefs("data.dir"));
    assert!(
        litefs_data.starts_with(volume),
        "{litefs_data:?} is not on the volume"
    );
    assert!(
        deployment.caje.cache_dir.starts_with(volume),
        "cache_dir {:?} is not on the volume",
        deployment.caje.cache_dir
    );
    assert!(
        !deployment.caje.cache_dir.starts_with(litefs_data)
            && !litefs_data.starts_with(&deployment.caje.cache_dir),
        "the cache and LiteFS's data must not nest"
    );
}

#[test]
fn the_manifest_sits_at_the_root_of_the_litefs_mount() {
    let deployment = Deployment::load();
    let fuse_dir = Path::new(deployment.litefs("fuse.dir"));
    assert_eq!(deployment.caje.database.parent(), Some(fuse_dir));
    assert!(deployment.caje.litefs.require, "[litefs] require = true");
    assert_eq!(deployment.caje.manifest.journal_mode, JournalMode::Delete);
    assert!(deployment.caje.manifest.enabled);
    // The LiteFS API caje asks for the role is the one litefs.yml opens, on this machine.
    let caje_api = deployment
        .caje
        .litefs
        .http_addr
        .as_deref()
        .expect("[litefs] http_addr");
    assert_eq!(port(caje_api), port(deployment.litefs("http.addr")));
    let host: SocketAddr = caje_api.parse().expect("http_addr is ip:port");
    assert!(host.ip().is_loopback());
}

#[test]
fn litefs_runs_caje_on_the_config_the_image_holds_without_a_shell() {
    let deployment = Deployment::load();
    let exec = deployment.litefs_exec();
    // LiteFS splits the command into argv itself: shell syntax would reach caje as arguments.
    for shell in ["|", "&", ";", "$(", "`", ">", "<"] {
        assert!(!exec.contains(shell), "{shell:?} in exec {exec:?}");
    }
    let argv: Vec<&str> = exec.split_whitespace().collect();
    assert!(!argv[0].contains('='), "no VAR=value prefix: {exec:?}");
    let config = deployment.dockerfile.destination_of("deploy/caje.fly.toml");
    assert_eq!(argv, ["caje", "serve", "--config", config.as_str()]);
    let env_config = deployment.fly("env.CAJE_CONFIG").as_str();
    assert_eq!(env_config, Some(config.as_str()));
    // ... and `caje` is on the image's PATH.
    let copies = deployment.dockerfile.copies();
    assert!(
        copies
            .iter()
            .any(|c| c.from.is_some() && c.dest == "/usr/local/bin/caje"),
        "the image installs caje as /usr/local/bin/caje"
    );
}

#[test]
fn only_the_primary_region_may_take_the_lease() {
    let deployment = Deployment::load();
    let candidate = deployment.litefs("lease.candidate");
    let primary_region = deployment.fly("primary_region").as_str().unwrap();
    assert_eq!(deployment.litefs("lease.type"), "consul");
    if candidate.contains("PRIMARY_REGION") {
        assert_eq!(
            deployment.fly("env.PRIMARY_REGION").as_str(),
            Some(primary_region),
            "litefs.yml compares FLY_REGION with PRIMARY_REGION: fly.toml's [env] must set it"
        );
    }
    // `fly consul attach` sets FLY_CONSUL_URL; nothing else provides it.
    assert!(
        deployment
            .litefs("lease.consul.url")
            .contains("FLY_CONSUL_URL")
    );
}

#[test]
fn the_health_check_is_an_admin_route_that_answers_without_the_token() {
    let deployment = Deployment::load();
    let checks = deployment.fly("http_service.checks").as_array().unwrap();
    assert!(!checks.is_empty());
    for check in checks {
        let path = check["path"].as_str().expect("a check has a path");
        let method = check
            .get("method")
            .and_then(|m| m.as_str())
            .unwrap_or("GET");
        let route = routes()
            .iter()
            .find(|r| r.path == path && r.method.as_str() == method)
            .unwrap_or_else(|| panic!("{method} {path} is not an admin route"));
        assert_eq!(route.method, Method::GET);
        // Secrets stay out of files: the checker sends no token.
        assert!(check.get("headers").is_none(), "no headers in checks");
        // Fly's checker is not on loopback and holds no token, so the route must be public, or
        // the health route with [admin] public_health.
        let answers = route.access == Access::Public
            || (path == "/_caje/health" && deployment.caje.admin.public_health);
        assert!(answers, "{path} would refuse Fly's checker");
    }
}

#[test]
fn fly_stops_the_machine_only_after_caje_finished_its_requests() {
    let deployment = Deployment::load();
    assert_eq!(deployment.fly("kill_signal").as_str(), Some("SIGTERM"));
    let kill_timeout = deployment.fly("kill_timeout").as_str().unwrap();
    let kill_timeout = humantime::parse_duration(kill_timeout).unwrap();
    assert!(kill_timeout > deployment.caje.server.shutdown_grace);
}

#[test]
fn the_fly_config_serves_named_hosts_only() {
    let deployment = Deployment::load();
    let app = deployment.fly("app").as_str().unwrap();
    let fly_host = format!("{app}.fly.dev");
    let origins = &deployment.caje.origins;
    assert!(
        origins.values().any(|o| o.hosts.contains(&fly_host)),
        "an origin must serve {fly_host} (fly.toml's app name), or Fly's own URL gets 421"
    );
    for (name, origin) in origins {
        assert!(
            origin.url.0.scheme_str() == Some("https"),
            "origin {name}: a production origin is reached over https"
        );
    }
    assert_eq!(deployment.caje.log.format, caje::logging::LogFormat::Json);
}

#[test]
fn both_caje_configs_have_the_origin_the_shipped_policies_route_to() {
    // route-by-path sends /api/* to the origin named "api" (policies/route-by-path).
    assert!(
        xtask::policies::EXAMPLES
            .iter()
            .any(|(package, _)| *package == "route-by-path")
    );
    let demo = Config::load(&repo().join("caje.toml"))
        .unwrap_or_else(|err| panic!("caje.toml does not load:\n{err}"));
    assert!(demo.origins.contains_key(&demo.default_origin));
    for config in [demo, Deployment::load().caje] {
        assert!(
            config.origins.contains_key("api"),
            "{:?}",
            config.origins.keys()
        );
    }
}

#[test]
fn fly_builds_the_dockerfile_from_the_repository_root_without_build_outputs() {
    let deployment = Deployment::load();
    // flyctl resolves [build] paths against fly.toml's directory.
    let deploy = repo().join("deploy");
    let dockerfile = deploy.join(deployment.fly("build.dockerfile").as_str().unwrap());
    assert_eq!(
        dockerfile.canonicalize().unwrap(),
        deploy.join("Dockerfile").canonicalize().unwrap()
    );
    // BuildKit reads <Dockerfile>.dockerignore beside the Dockerfile; flyctl the ignorefile.
    let ignorefile = deployment.fly("build.ignorefile").as_str().unwrap();
    assert_eq!(ignorefile, "Dockerfile.dockerignore");
    let ignored: Vec<String> = read("deploy/Dockerfile.dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_matches('/').to_owned())
        .collect();
    for output in ["target", "policies/target", "var"] {
        assert!(
            ignored.iter().any(|l| l == output),
            "{output} is not ignored"
        );
    }
}

#[test]
fn every_config_file_is_checked_here() {
    let mut found = Vec::new();
    collect_configs(&repo(), &mut found);
    let mut found: Vec<String> = found
        .iter()
        .map(|p| p.strip_prefix(repo()).unwrap().display().to_string())
        .collect();
    found.sort();
    let mut checked = CHECKED.map(str::to_owned).to_vec();
    // Each example's cases file is run through its module by `cargo xtask test`
    // (xtask/src/test.rs), which refuses an example without one.
    checked.extend(
        xtask::policies::EXAMPLES.map(|(package, _)| format!("policies/{package}/cases.toml")),
    );
    checked.sort();
    assert_eq!(
        found, checked,
        "add a new config file to CHECKED with a test"
    );
}

/// TOML and YAML files outside build outputs, crate manifests and the benchmark's peers (nginx
/// and Varnish configs, run by `cargo xtask bench`).
fn collect_configs(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            let skipped = ["target", "var", "bench", ".git", ".cargo"];
            if !skipped.contains(&name.as_str()) {
                collect_configs(&path, found);
            }
        } else if name != "Cargo.toml"
            && [".toml", ".yml", ".yaml"]
                .iter()
                .any(|ext| name.ends_with(ext))
        {
            found.push(path);
        }
    }
}
