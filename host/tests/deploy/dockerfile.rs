//! Just enough of a Dockerfile reader for the checks: instructions with their continuation lines
//! joined, COPY sources and destinations, and the shell commands of RUN.

/// One instruction, e.g. `RUN` with its arguments (continuations joined, comments dropped).
#[derive(Debug)]
pub struct Instruction {
    pub keyword: String,
    pub args: String,
    /// 0 for the first `FROM` stage, 1 for the second, ...
    pub stage: usize,
}

/// A `COPY`: `--from=` (an image or a stage), its sources and its destination.
#[derive(Debug)]
pub struct Copy {
    pub from: Option<String>,
    pub sources: Vec<String>,
    pub dest: String,
    pub stage: usize,
}

pub struct Dockerfile {
    pub instructions: Vec<Instruction>,
}

impl Dockerfile {
    pub fn parse(text: &str) -> Dockerfile {
        let mut instructions: Vec<Instruction> = Vec::new();
        let mut pending = String::new();
        let mut stage = None::<usize>;
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_empty()) {
                continue;
            }
            let (body, continued) = match trimmed.strip_suffix('\\') {
                Some(body) => (body, true),
                None => (trimmed, false),
            };
            pending.push_str(body.trim());
            pending.push(' ');
            if continued {
                continue;
            }
            let full = std::mem::take(&mut pending);
            let (keyword, args) = full.trim().split_once(' ').unwrap_or((full.trim(), ""));
            let keyword = keyword.to_ascii_uppercase();
            if keyword == "FROM" {
                stage = Some(stage.map_or(0, |s| s + 1));
            }
            instructions.push(Instruction {
                keyword,
                args: args.split_whitespace().collect::<Vec<_>>().join(" "),
                stage: stage.expect("a Dockerfile starts with FROM"),
            });
        }
        assert!(pending.is_empty(), "the Dockerfile ends in a continuation");
        Dockerfile { instructions }
    }

    /// The stage the image is made of (the last one).
    pub fn final_stage(&self) -> usize {
        self.instructions.last().map_or(0, |i| i.stage)
    }

    pub fn all(&self, keyword: &str) -> impl Iterator<Item = &Instruction> {
        self.instructions
            .iter()
            .filter(move |i| i.keyword == keyword)
    }

    pub fn copies(&self) -> Vec<Copy> {
        self.all("COPY")
            .map(|copy| {
                let (flags, paths): (Vec<&str>, Vec<&str>) = copy
                    .args
                    .split_whitespace()
                    .partition(|word| word.starts_with("--"));
                let (dest, sources) = paths.split_last().expect("COPY has a destination");
                Copy {
                    from: flags
                        .iter()
                        .find_map(|flag| flag.strip_prefix("--from="))
                        .map(str::to_owned),
                    sources: sources.iter().map(|s| (*s).to_owned()).collect(),
                    dest: (*dest).to_owned(),
                    stage: copy.stage,
                }
            })
            .collect()
    }

    /// Where the final image holds the repository file `source`.
    pub fn destination_of(&self, source: &str) -> String {
        let copies = self.copies();
        let copy = copies
            .iter()
            .find(|c| c.from.is_none() && c.sources == [source])
            .unwrap_or_else(|| panic!("the Dockerfile does not COPY {source} on its own"));
        assert_eq!(
            copy.stage,
            self.final_stage(),
            "{source} is not in the image"
        );
        copy.dest.clone()
    }

    /// The shell commands of every RUN, in order: `--mount` options dropped, `a && b` split.
    pub fn run_commands(&self) -> Vec<String> {
        self.all("RUN")
            .flat_map(|run| {
                let command: Vec<&str> = run
                    .args
                    .split_whitespace()
                    .skip_while(|word| word.starts_with("--"))
                    .collect();
                command
                    .join(" ")
                    .split("&&")
                    .map(|part| part.trim().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The exec-form ENTRYPOINT of the image.
    pub fn entrypoint(&self) -> Vec<String> {
        let entrypoint = self
            .all("ENTRYPOINT")
            .last()
            .expect("the Dockerfile has an ENTRYPOINT");
        serde_json::from_str(&entrypoint.args)
            .expect("ENTRYPOINT is in exec form: a JSON array of strings")
    }
}

#[test]
fn the_reader_joins_continuations_and_splits_commands() {
    let file = Dockerfile::parse(
        "# syntax=docker/dockerfile:1\nFROM a AS build\nRUN --mount=type=cache,target=/t \\\n    \
         # a comment inside\n    cargo build  -p x \\\n    && install -D a /out/b\n\n\
         FROM b\nCOPY --from=build /out/b /usr/bin/b\nCOPY x.yml /etc/x.yml\n\
         ENTRYPOINT [\"b\", \"run\"]\n",
    );
    assert_eq!(file.final_stage(), 1);
    assert_eq!(
        file.run_commands(),
        ["cargo build -p x", "install -D a /out/b"]
    );
    assert_eq!(file.destination_of("x.yml"), "/etc/x.yml");
    let copies = file.copies();
    assert_eq!(copies[0].from.as_deref(), Some("build"));
    assert_eq!(file.entrypoint(), ["b", "run"]);
}
