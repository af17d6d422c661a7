//! A real headless Chromium for dashboard tests, driven over the Chrome DevTools protocol on
//! `--remote-debugging-pipe` (fds 3 and 4, messages as JSON ending in a NUL byte). Only the
//! `chromium` package is needed; `cargo xtask test` installs it.

use std::io::{BufRead, BufReader, PipeReader, PipeWriter, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

/// Longest wait for one protocol answer.
const CALL_LIMIT: Duration = Duration::from_secs(30);

pub struct Browser {
    child: Child,
    to_browser: PipeWriter,
    messages: Receiver<Value>,
    next_id: u64,
    session: Option<String>,
    /// Script errors, CSP violations and console errors the page produced (network errors such
    /// as an expected 401 are not counted).
    pub errors: Vec<String>,
    /// Messages of the dialogs (`confirm`, `alert`) the page opened; each was accepted.
    pub dialogs: Vec<String>,
    _profile: TempDir,
}

impl Browser {
    /// Starts headless Chromium. `None` (after saying why on stderr) when it is not installed,
    /// except under `CI=true`, where that is a test failure.
    pub fn launch() -> Option<Browser> {
        let Some(chromium) = find_chromium() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "Chromium is required under CI=true: apt-get install chromium (cargo xtask test does)"
            );
            eprintln!(
                "SKIPPED: no Chromium (set CHROMIUM or apt-get install chromium) — the dashboard \
                 was not tested in a browser"
            );
            return None;
        };
        let profile = tempfile::tempdir().expect("browser profile dir");
        let (commands_read, commands_write) = std::io::pipe().expect("pipe");
        let (answers_read, answers_write) = std::io::pipe().expect("pipe");
        let (child_in, child_out) = (commands_read.as_raw_fd(), answers_write.as_raw_fd());
        let mut command = Command::new(&chromium);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (fcntl, dup2) run between fork and exec. The
        // pipe ends are first moved above fd 10 so that placing them at 3 and 4 cannot
        // overwrite one with the other.
        unsafe {
            command.pre_exec(move || {
                let high_in = libc::fcntl(child_in, libc::F_DUPFD, 10);
                let high_out = libc::fcntl(child_out, libc::F_DUPFD, 10);
                if high_in < 0
                    || high_out < 0
                    || libc::dup2(high_in, 3) < 0
                    || libc::dup2(high_out, 4) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", chromium.display()));
        drop((commands_read, answers_write));
        let messages = read_messages(answers_read);
        Some(Browser {
            child,
            to_browser: commands_write,
            messages,
            next_id: 0,
            session: None,
            errors: Vec::new(),
            dialogs: Vec::new(),
            _profile: profile,
        })
    }

    /// Opens `url` in a new tab and waits until it has loaded.
    pub fn open(&mut self, url: &str) {
        let target = self.call("Target.createTarget", json!({ "url": "about:blank" }));
        let target_id = target["targetId"].as_str().expect("targetId").to_owned();
        let attached = self.call(
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
        );
        self.session = Some(
            attached["sessionId"]
                .as_str()
                .expect("sessionId")
                .to_owned(),
        );
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            self.call(domain, json!({}));
        }
        self.navigate(url);
    }

    /// Loads `url` in the current tab and waits until the document is complete.
    pub fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url }));
        self.wait_until(
            &format!("{url} to load"),
            "document.readyState === 'complete' && location.href !== 'about:blank'",
        );
    }

    /// Evaluates a JavaScript expression in the page (awaiting a promise) and returns its value.
    pub fn eval(&mut self, expression: &str) -> Value {
        let answer = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(exception) = answer.get("exceptionDetails") {
            panic!("page script {expression:?} threw: {exception}");
        }
        answer["result"]["value"].clone()
    }

    /// Polls `condition` (a JavaScript expression) every 50 ms until it is true; panics naming
    /// `what`, with the page's text, after 15 s.
    pub fn wait_until(&mut self, what: &str, condition: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if self.eval(&format!("Boolean({condition})")) == json!(true) {
                return;
            }
            if Instant::now() > deadline {
                let text = self.eval("document.body ? document.body.innerText : ''");
                panic!("timed out waiting for {what}; the page shows:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends one command (to the attached tab, once there is one) and waits for its answer,
    /// handling the events that arrive meanwhile.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        self.send(&message);
        let deadline = Instant::now() + CALL_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = match self.messages.recv_timeout(left) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => panic!("Chromium did not answer {method}"),
                Err(RecvTimeoutError::Disconnected) => panic!("Chromium exited during {method}"),
            };
            if message["id"] == json!(id) {
                if let Some(error) = message.get("error") {
                    panic!("Chromium refused {method}: {error}");
                }
                return message["result"].clone();
            }
            self.event(&message);
        }
    }

    fn event(&mut self, message: &Value) {
        let params = &message["params"];
        match message["method"].as_str().unwrap_or("") {
            "Page.javascriptDialogOpening" => {
                self.dialogs
                    .push(params["message"].as_str().unwrap_or("").to_owned());
                let mut accept = json!({
                    "id": 0,
                    "method": "Page.handleJavaScriptDialog",
                    "params": { "accept": true },
                });
                accept["sessionId"] = message["sessionId"].clone();
                self.send(&accept);
            }
            "Runtime.exceptionThrown" => self.errors.push(params["exceptionDetails"].to_string()),
            "Runtime.consoleAPICalled" if params["type"] == "error" => {
                self.errors.push(params["args"].to_string())
            }
            "Log.entryAdded"
                if params["entry"]["level"] == "error"
                    && params["entry"]["source"] != "network" =>
            {
                self.errors.push(params["entry"]["text"].to_string())
            }
            _ => {}
        }
    }

    fn send(&mut self, message: &Value) {
        let mut bytes = serde_json::to_vec(message).expect("JSON");
        bytes.push(0);
        self.to_browser
            .write_all(&bytes)
            .expect("write to Chromium's pipe");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads NUL-terminated JSON messages on a thread of their own.
fn read_messages(pipe: PipeReader) -> Receiver<Value> {
    let (sender, receiver) = channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buffer = Vec::new();
        while matches!(reader.read_until(0, &mut buffer), Ok(n) if n > 0) {
            buffer.pop_if(|b| *b == 0);
            if let Ok(message) = serde_json::from_slice(&buffer)
                && sender.send(message).is_err()
            {
                return;
            }
            buffer.clear();
        }
    });
    receiver
}

fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(path.into());
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}
