//! The Dockerfile builds what the README says it builds, ships the example policies the demo
//! ships (never the test modules), runs the LiteFS release the tests run, and starts LiteFS on
//! the litefs.yml it holds.

use std::path::Path;

use caje_testkit::litefs::LITEFS_VERSION;
use xtask::policies::{EXAMPLES, TARGET};

use crate::files::Deployment;
use crate::readme_section;

/// The README section that lists the image's build commands.
const README_SECTION: &str = "What the image does";

/// Build commands, the only ones the README and the Dockerfile must share word for word.
fn is_build_command(command: &str) -> bool {
    command.starts_with("cargo ") || command.starts_with("rustup ")
}

/// The commands of the README section's shell block: continuations joined, comments dropped.
fn readme_commands() -> Vec<String> {
    let section = readme_section(README_SECTION);
    let block: Vec<&str> = section
        .iter()
        .skip_while(|line| !line.starts_with("```sh"))
        .skip(1)
        .take_while(|line| !line.starts_with("```"))
        .map(|line| line.split(" #").next().unwrap_or("").trim())
        .collect();
    assert!(!block.is_empty(), "no ```sh block under {README_SECTION:?}");
    let joined = block.join("\n").replace("\\\n", " ");
    joined
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| is_build_command(line))
        .collect()
}

#[test]
fn the_readme_lists_the_build_commands_the_dockerfile_runs() {
    let deployment = Deployment::load();
    let dockerfile: Vec<String> = deployment
        .dockerfile
        .run_commands()
        .into_iter()
        .filter(|command| is_build_command(command))
        .collect();
    assert!(dockerfile.len() >= 2, "{dockerfile:?}");
    assert_eq!(
        readme_commands(),
        dockerfile,
        "README.md ({README_SECTION:?}) and deploy/Dockerfile differ"
    );
}

#[test]
fn the_image_ships_the_demo_s_example_policies_in_chain_order_and_nothing_else() {
    let deployment = Deployment::load();
    let commands = deployment.dockerfile.run_commands();
    let policies_build = commands
        .iter()
        .find(|c| c.starts_with("cargo build") && c.contains(TARGET))
        .expect("a cargo build of the policies");
    let packages: Vec<&str> = policies_build
        .split_whitespace()
        .skip_while(|word| *word != "-p")
        .collect::<Vec<_>>()
        .chunks(2)
        .map(|pair| {
            assert_eq!(pair[0], "-p", "{policies_build}");
            pair[1]
        })
        .collect();
    let installs: Vec<(&str, &str)> = commands
        .iter()
        .filter(|c| c.starts_with("install ") && c.contains("/out/policies/"))
        .map(|c| {
            let words: Vec<&str> = c.split_whitespace().collect();
            let [.., source, dest] = words[..] else {
                panic!("{c}")
            };
            (source, dest)
        })
        .collect();
    let mut expected_packages: Vec<&str> = EXAMPLES.iter().map(|(p, _)| *p).collect();
    let mut built = packages.clone();
    expected_packages.sort();
    built.sort();
    assert_eq!(
        built, expected_packages,
        "the image builds the examples only"
    );
    assert_eq!(installs.len(), EXAMPLES.len());
    for ((source, dest), (package, file)) in installs.iter().zip(EXAMPLES) {
        let stem = package.replace('-', "_");
        assert!(
            source.ends_with(&format!("{TARGET}/release/{stem}.wasm")),
            "{source}"
        );
        assert_eq!(Path::new(dest).file_name().unwrap(), file);
    }
    // They land in caje.fly.toml's policies_dir.
    let copies = deployment.dockerfile.copies();
    let shipped = copies
        .iter()
        .find(|c| c.sources == ["/out/policies/"])
        .expect("the image copies /out/policies/");
    assert_eq!(shipped.stage, deployment.dockerfile.final_stage());
    assert_eq!(Path::new(&shipped.dest), deployment.caje.policies_dir);
}

#[test]
fn the_image_runs_the_tested_litefs_on_the_shipped_litefs_yml() {
    let deployment = Deployment::load();
    let dockerfile = &deployment.dockerfile;
    let copies = dockerfile.copies();
    let litefs = copies
        .iter()
        .find(|c| {
            c.from
                .as_deref()
                .is_some_and(|f| f.starts_with("flyio/litefs:"))
        })
        .expect("the litefs binary comes from the flyio/litefs image");
    let tag = litefs
        .from
        .as_deref()
        .unwrap()
        .trim_start_matches("flyio/litefs:");
    assert_eq!(tag, LITEFS_VERSION.trim_start_matches('v'));
    assert_eq!(litefs.dest, "/usr/local/bin/litefs");
    // `litefs mount` without -config reads ./litefs.yml, ~/litefs.yml, then /etc/litefs.yml.
    assert_eq!(dockerfile.entrypoint(), ["litefs", "mount"]);
    assert_eq!(dockerfile.destination_of("litefs.yml"), "/etc/litefs.yml");
}

#[test]
fn base_images_are_pinned() {
    let deployment = Deployment::load();
    for from in deployment.dockerfile.all("FROM") {
        let image = from.args.split_whitespace().next().unwrap();
        let (_, tag) = image
            .split_once(':')
            .unwrap_or_else(|| panic!("{image} has no tag"));
        assert!(
            tag.starts_with(|c: char| c.is_ascii_digit()),
            "{image}: pin a version, not {tag:?}"
        );
    }
}
