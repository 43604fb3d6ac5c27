//! README.md, run as a new user runs it: every command block, in order, exactly as
//! written, against fresh servers — so the text and the program cannot drift apart.
//!
//! What the walk changes, and nothing else:
//! - Capitalised placeholders (`CASE_ID`, `MIA_CODE`, `READ_INDEX`, …) are filled from
//!   what an earlier command printed; one that nothing printed fails the test. A
//!   placeholder that stands for several values (`PRODUCED_ID`) runs its line once each.
//! - Every `127.0.0.1:84xx` port is moved to a free one (and the server's default
//!   listeners with them), so the walk never meets a server already on this machine.
//! - `cargo build --release` is this test's own build of the same source (the binary is
//!   linked where the README expects it); `cargo run --release -- serve` runs it.
//! - The cluster walkthrough's database role and name get a name of their own, dropped at
//!   the end; its NATS subjects a prefix of their own.
//! - Two blocks are not run, each with its reason (`SKIPPED`).
//!
//! A command that exits non-zero fails the test with the README line and its output, and
//! so does a README block this walk does not know how to run. `CUSTODIA_README=FILE`
//! walks another file (to see that a wrong command fails the walk).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};

/// Blocks not run, by their first command, with why.
const SKIPPED: &[(&str, &str)] = &[
    ("./.ci/run", "it is the test runner that runs this test"),
    (
        "custodia-bench load",
        "a 20-second load run of the benchmark program, measured in the notes, not tested",
    ),
];

/// What a command must show beyond succeeding: (README text of the command, where to
/// look, what must appear there).
const CHECKS: &[(&str, Look, &str)] = &[
    (r#"send bob "hello Bob""#, Look::Listener, "[alice] #1 "),
    (
        r#"group create "book club" bob"#,
        Look::Listener,
        "[book club] you were added",
    ),
    ("report alice 1", Look::Output, "reported 1 message"),
    ("mia case CASE_ID", Look::Output, "verified"),
    ("read REQUEST_ID", Look::Output, "logged as audit entry"),
    ("read REQUEST_ID", Look::Output, r#"alice: "hello Bob""#),
    ("disclosure verify", Look::Output, ": verified"),
    (
        "access-history --verify",
        Look::Output,
        "every read of your messages in the log has a notice",
    ),
    ("custodia admin hash photo.jpg", Look::Output, "pdq"),
    (r#"send bob "hi""#, Look::Listener, "alice: hi"),
];

#[derive(Clone, Copy, PartialEq)]
enum Look {
    /// The command's own output.
    Output,
    /// The latest `listen` running in the background.
    Listener,
}

/// The files the README's commands read that an operator would be handed.
fn given_files(work: &Path) {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../custodia-pdq/tests/data");
    std::fs::copy(format!("{data}/scene-a-q60.jpg"), work.join("photo.jpg")).unwrap();
    std::fs::write(
        work.join("iwf-sha256.txt"),
        "# sha256\n9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n",
    )
    .unwrap();
    let pdq = std::fs::read_to_string(format!("{data}/expected.txt")).unwrap();
    let hash = pdq.split_whitespace().nth(1).unwrap().to_owned();
    std::fs::write(
        work.join("hma-export.csv"),
        format!("signal_type,signal,bank\npdq,{hash},test-bank\n"),
    )
    .unwrap();
}

#[test]
fn every_readme_command_works_as_written() {
    let readme = std::env::var("CUSTODIA_README")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md").into());
    let text = std::fs::read_to_string(&readme).unwrap();
    let blocks = parse(&text);
    assert!(
        blocks.iter().filter(|b| b.lang == "sh").count() >= 10,
        "{readme} has its walkthroughs in ```sh blocks"
    );

    assert!(
        text.contains("CUSTODIA_STAFF_DECIDE_AFTER_HOURS=0 cargo run --release -- serve"),
        "the walk starts the server as the README says to try everything at once"
    );
    let work = tempfile::tempdir().unwrap();
    given_files(work.path());
    let mut walk = Walk::new(work.path(), &text);
    for block in &blocks {
        match block.lang.as_str() {
            "sh" => walk.block(block),
            "toml" => walk.toml(block),
            other => panic!(
                "README.md:{}: a ```{other} block this test does not know how to check",
                block.line
            ),
        }
    }
    walk.finish();
}

/// A fenced block of the README.
struct Block {
    /// The `## ` section it is in.
    section: String,
    /// Its opening fence's line (1-based).
    line: usize,
    lang: String,
    /// (line, text) of its lines.
    lines: Vec<(usize, String)>,
}

fn parse(md: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut section = String::new();
    let mut open: Option<Block> = None;
    for (i, line) in md.lines().enumerate() {
        let n = i + 1;
        if let Some(rest) = line.strip_prefix("```") {
            match open.take() {
                Some(b) => blocks.push(b),
                None => {
                    open = Some(Block {
                        section: section.clone(),
                        line: n,
                        lang: rest.trim().to_owned(),
                        lines: Vec::new(),
                    })
                }
            }
        } else if let Some(b) = open.as_mut() {
            b.lines.push((n, line.to_owned()));
        } else if let Some(h) = line.strip_prefix("## ") {
            section = h.trim().to_owned();
        }
    }
    assert!(open.is_none(), "an unclosed ``` block");
    blocks
}

/// A block's commands: continuation lines joined, blank and comment lines left out.
fn commands(block: &Block) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (n, line) in &block.lines {
        let (start, mut cmd) = pending.take().unwrap_or((*n, String::new()));
        cmd.push_str(line.trim_end());
        if let Some(head) = cmd.strip_suffix('\\') {
            pending = Some((start, format!("{head} ")));
            continue;
        }
        let trimmed = without_comment(&cmd);
        if !trimmed.is_empty() {
            out.push((start, trimmed.to_owned()));
        }
    }
    assert!(pending.is_none(), "README.md:{}: a dangling \\", block.line);
    out
}

/// A command without its trailing `# comment` (a `#` outside quotes, after a space).
fn without_comment(cmd: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in cmd.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '#') if prev.is_whitespace() => return cmd[..i].trim(),
            _ => {}
        }
        prev = c;
    }
    cmd.trim()
}

/// Capitalised placeholder words (`CASE_ID`, `LEE_CODE`, `AGENCY_AGE_KEY`, …) in `cmd`.
fn placeholders(cmd: &str) -> Vec<String> {
    let mut found: Vec<String> = cmd
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| {
            w.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                && ["_ID", "_CODE", "_INDEX", "_KEY"]
                    .iter()
                    .any(|s| w.ends_with(s))
        })
        .map(str::to_owned)
        .collect();
    found.dedup();
    found
}

/// A command left running (a server, a witness, a listener).
struct Background {
    what: String,
    child: Child,
    lines: Arc<(Mutex<Vec<String>>, Condvar)>,
}

impl Background {
    fn spawn(mut cmd: Command, what: &str) -> Self {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("bash");
        let lines: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::default();
        let out: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().unwrap());
        let err: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().unwrap());
        for stream in [out, err] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let (seen, cond) = &*lines;
                    seen.lock().unwrap().push(line);
                    cond.notify_all();
                }
            });
        }
        Self {
            what: what.to_owned(),
            child,
            lines,
        }
    }

    /// Waits until a line contains `text`, and returns it.
    fn wait_for(&self, text: &str) -> String {
        let (seen, cond) = &*self.lines;
        let deadline = std::time::Instant::now() + common::PATIENCE;
        let mut lines = seen.lock().unwrap();
        loop {
            if let Some(l) = lines.iter().find(|l| l.contains(text)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(
                !left.is_zero(),
                "`{}` never printed {text:?}; it printed:\n{}",
                self.what,
                lines.join("\n")
            );
            lines = cond.wait_timeout(lines, left).unwrap().0;
        }
    }

    fn output(&self) -> String {
        self.lines.0.lock().unwrap().join("\n")
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // The whole process group: bash and what it started.
        let pid = self.child.id();
        assert!(pid > 1);
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status();
        let _ = self.child.wait();
    }
}

/// Where the walk is: the shell state and what earlier commands printed.
struct Walk {
    work: PathBuf,
    bin: PathBuf,
    /// `export` and `alias` lines run so far, as a new shell would have them.
    prelude: Vec<String>,
    env: HashMap<String, String>,
    /// README address → free address.
    ports: Vec<(String, String)>,
    /// Placeholder → what it stands for.
    values: HashMap<String, Vec<String>>,
    /// Staff username → their TOTP secret's otpauth URI.
    totp: HashMap<String, String>,
    background: Vec<Background>,
    /// The cluster walkthrough's own database names: (README text, replacement, used).
    database: Vec<(String, String, bool)>,
    role: String,
    skipped: Vec<&'static str>,
    checked: Vec<bool>,
    built: bool,
}

impl Walk {
    fn new(work: &Path, readme: &str) -> Self {
        let mut ports = Vec::new();
        let mut rest = readme;
        while let Some(i) = rest.find("127.0.0.1:84") {
            let addr = &rest[i..i + "127.0.0.1:8443".len()];
            if !ports.iter().any(|(a, _): &(String, String)| a == addr) {
                let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                ports.push((addr.to_owned(), free.local_addr().unwrap().to_string()));
            }
            rest = &rest[i + 1..];
        }
        let moved = |a: &str| -> String {
            ports
                .iter()
                .find(|(from, _)| from == a)
                .unwrap_or_else(|| panic!("the README never names {a}"))
                .1
                .clone()
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let role = format!("readme_{}_{nanos}", std::process::id());
        let mut env = HashMap::new();
        for (k, v) in [
            (
                "CUSTODIA_CONFIG_DIR",
                work.join("config").display().to_string(),
            ),
            ("CUSTODIA_PASSWORD", custodia_test::PASSWORD.to_owned()),
            // The server's default listeners, moved as the README's addresses are.
            ("CUSTODIA_LISTEN", moved("127.0.0.1:8443")),
            ("CUSTODIA_STAFF_LISTEN", moved("127.0.0.1:8446")),
            ("CUSTODIA_AUDIT_LISTEN", moved("127.0.0.1:8444")),
            ("CUSTODIA_NATS_SUBJECT_PREFIX", role.clone()),
            ("PGUSER", "postgres".to_owned()),
            ("RUST_BACKTRACE", "0".to_owned()),
        ] {
            env.insert(k.to_owned(), v);
        }
        let database = vec![
            (
                "createuser -h 127.0.0.1 custodia".to_owned(),
                format!("createuser -h 127.0.0.1 {role}"),
                false,
            ),
            (
                "createdb -h 127.0.0.1 -O custodia custodia".to_owned(),
                format!("createdb -h 127.0.0.1 -O {role} {role}"),
                false,
            ),
            (
                "postgres://custodia@127.0.0.1:5432/custodia".to_owned(),
                format!("postgres://{role}@127.0.0.1:5432/{role}"),
                false,
            ),
        ];
        Self {
            work: work.to_owned(),
            bin: PathBuf::from(env!("CARGO_BIN_EXE_custodia")),
            prelude: vec!["shopt -s expand_aliases".to_owned()],
            env,
            ports,
            values: HashMap::new(),
            totp: HashMap::new(),
            background: Vec::new(),
            database,
            role,
            skipped: Vec::new(),
            checked: vec![false; CHECKS.len()],
            built: false,
        }
    }

    fn block(&mut self, block: &Block) {
        if block.section == "Running a cluster" && !self.database.iter().any(|d| d.2) {
            // The cluster walkthrough is a deployment of its own, from a new terminal.
            self.background.clear();
            self.env.insert(
                "CUSTODIA_CONFIG_DIR".into(),
                self.work.join("cluster-config").display().to_string(),
            );
        }
        let cmds = commands(block);
        assert!(!cmds.is_empty(), "README.md:{}: an empty block", block.line);
        if let Some((first, why)) = SKIPPED.iter().find(|(s, _)| cmds[0].1.starts_with(s)) {
            eprintln!("README.md:{}: not run ({why})", block.line);
            self.skipped.push(first);
            return;
        }
        for (line, cmd) in cmds {
            self.command(line, &cmd);
        }
    }

    fn command(&mut self, line: usize, written: &str) {
        eprintln!("README.md:{line}: {written}");
        match written {
            "cargo run --release -- serve" => {
                // As the staff section says to try the whole walkthrough at once.
                let serve = format!(
                    "CUSTODIA_STAFF_DECIDE_AFTER_HOURS=0 {} serve",
                    self.bin.display()
                );
                self.start(line, &serve, "custodia serve");
                return;
            }
            "cargo build --release" => {
                let dir = self.work.join("target/release");
                std::fs::create_dir_all(&dir).unwrap();
                std::os::unix::fs::symlink(&self.bin, dir.join("custodia")).unwrap();
                self.built = true;
                return;
            }
            _ => {}
        }
        assert!(
            !written.starts_with("cargo "),
            "README.md:{line}: a cargo command this test does not stand in for: {written}"
        );
        let mut cmd = written.to_owned();
        for (from, to) in &self.ports {
            cmd = cmd.replace(from.as_str(), to);
        }
        for (from, to, used) in &mut self.database {
            if cmd.contains(from.as_str()) {
                cmd = cmd.replace(from.as_str(), to);
                *used = true;
            }
        }
        // Every combination of the placeholders' values (one, or each of several).
        let mut runs = vec![cmd];
        for p in placeholders(written) {
            let values = self.values.get(&p).cloned().unwrap_or_else(|| {
                panic!("README.md:{line}: {p} is used before any command printed it: {written}")
            });
            runs = runs
                .iter()
                .flat_map(|c| values.iter().map(|v| c.replace(p.as_str(), v)))
                .collect();
        }
        for cmd in runs {
            if cmd.starts_with("export ") || cmd.starts_with("alias ") {
                self.run(line, &cmd);
                self.prelude.push(cmd);
            } else if let Some(bg) = cmd.strip_suffix('&') {
                self.start(line, bg.trim(), written);
            } else if cmd.contains("custodia witness ") {
                // Runs until stopped: in a terminal of its own.
                self.start(line, &cmd, written);
            } else {
                let out = self.run(line, &cmd);
                self.learn(written, &out);
                self.check(written, &out);
            }
        }
    }

    fn shell(&self, cmd: &str) -> Command {
        let mut script = self.prelude.join("\n");
        script.push('\n');
        script.push_str(cmd);
        let mut c = Command::new("bash");
        c.arg("-c").arg(script).current_dir(&self.work);
        for (k, _) in std::env::vars() {
            if k.starts_with("CUSTODIA_") {
                c.env_remove(k);
            }
        }
        c.envs(&self.env);
        if let Some(user) = staff_login(cmd) {
            let uri = self
                .totp
                .get(user)
                .unwrap_or_else(|| panic!("{user} signs in before enrolling: {cmd}"));
            c.env("CUSTODIA_TOTP_CODE", custodia_test::totp_code(uri));
        }
        c
    }

    /// Runs `cmd` to the end; its stdout and stderr.
    fn run(&self, line: usize, cmd: &str) -> String {
        let out = self.shell(cmd).stdin(Stdio::null()).output().expect("bash");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            let servers: Vec<String> = self
                .background
                .iter()
                .map(|b| format!("--- {} ---\n{}", b.what, tail(&b.output(), 15)))
                .collect();
            panic!(
                "README.md:{line}: `{cmd}` failed ({}):\n{text}\n{}",
                out.status,
                servers.join("\n")
            );
        }
        text
    }

    /// Starts `cmd` in the background and waits until it says it is ready.
    fn start(&mut self, line: usize, cmd: &str, written: &str) {
        let bg = Background::spawn(self.shell(cmd), &format!("README.md:{line}: {written}"));
        bg.wait_for("Ctrl-C");
        let out = bg.output();
        self.learn(written, &out);
        self.background.push(bg);
    }

    /// Takes the placeholders' values from what a command printed.
    fn learn(&mut self, cmd: &str, out: &str) {
        let mut set = |k: String, v: &str| {
            self.values.insert(k, vec![v.to_owned()]);
        };
        for l in out.lines() {
            let words: Vec<&str> = l.split_whitespace().collect();
            // serve: "admin (admin): enrolment code CODE"
            if let Some(i) = words.iter().position(|w| *w == "enrolment") {
                if words.get(i + 1) == Some(&"code") && i >= 2 && words[1].ends_with("):") {
                    set(format!("{}_CODE", words[0].to_uppercase()), words[i + 2]);
                }
                // approve-change: "enrolment code for NAME (shown once; …): CODE"
                if words.get(i + 2) == Some(&"for") {
                    set(
                        format!("{}_CODE", words[i + 3].to_uppercase()),
                        words.last().unwrap(),
                    );
                }
            }
            // create-account: "staff change ID create NAME role ROLE …"
            if l.starts_with("staff change ") && words.get(5) == Some(&"role") {
                set(format!("{}_CHANGE_ID", words[4].to_uppercase()), words[2]);
            }
            // enrol: "TOTP secret for an authenticator app (shown once): otpauth://…"
            if let Some(uri) = l.split("(shown once): ").nth(1)
                && uri.starts_with("otpauth://")
            {
                let user = cmd.split_whitespace().skip_while(|w| *w != "enrol").nth(1);
                self.totp.insert(user.unwrap().to_owned(), uri.to_owned());
            }
            // legal intake: "received legal request LR-… (id ID)"
            if l.starts_with("received legal request ")
                && let Some(id) = l.split("(id ").nth(1)
            {
                set("LEGAL_ID".into(), id.trim_end_matches(')'));
            }
            // staff read: "logged as audit entry N before release"
            if l.starts_with("logged as audit entry ") {
                set("READ_INDEX".into(), words[4]);
            }
            // age-keygen: "Public key: age1…"
            if let Some(key) = l.strip_prefix("Public key: ") {
                set("AGENCY_AGE_KEY".into(), key.trim());
            }
            // witness: "  witness key: KEY"
            if let Some(key) = l.trim().strip_prefix("witness key: ") {
                set("WITNESS_KEY".into(), key.trim());
            }
        }
        let requests: Vec<String> = out
            .lines()
            .filter_map(|l| l.strip_prefix("request "))
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
            .collect();
        if cmd.contains(" legal produce ") {
            assert!(!requests.is_empty(), "produce printed no request: {out}");
            self.values.insert("PRODUCED_ID".into(), requests);
        } else if cmd.contains(" request --case ") {
            self.values.insert("REQUEST_ID".into(), requests);
        } else if cmd.ends_with(" cases") || cmd.contains(" cases ") {
            let first = out.split_whitespace().next().expect("a case");
            self.values.insert("CASE_ID".into(), vec![first.to_owned()]);
        }
    }

    fn check(&mut self, written: &str, out: &str) {
        for (i, (cmd, look, wanted)) in CHECKS.iter().enumerate() {
            if !written.contains(cmd) {
                continue;
            }
            self.checked[i] = true;
            match look {
                Look::Output => assert!(
                    out.contains(wanted),
                    "`{written}` did not print {wanted:?}:\n{out}"
                ),
                Look::Listener => {
                    let listener = self
                        .background
                        .iter()
                        .rev()
                        .find(|b| b.what.ends_with(" listen &"))
                        .expect("a listener runs");
                    listener.wait_for(wanted);
                }
            }
        }
    }

    /// The witness configuration: with the key the witness printed, `serve` takes it.
    fn toml(&mut self, block: &Block) {
        let key = self
            .values
            .get("WITNESS_KEY")
            .expect("the witness ran first")[0]
            .clone();
        let mut text = String::new();
        let mut keyed = false;
        for (_, l) in &block.lines {
            let mut l = l.clone();
            for (from, to) in &self.ports {
                l = l.replace(from.as_str(), to);
            }
            if l.starts_with("key = ") && l.contains('…') {
                l = format!("key = {key:?}");
                keyed = true;
            }
            text.push_str(&l);
            text.push('\n');
        }
        assert!(keyed, "README.md:{}: no `key = \"…\"` to fill", block.line);
        std::fs::write(self.work.join("witness.toml"), &text).unwrap();
        let out = self.run(
            block.line,
            &format!(
                "{} serve --config witness.toml --print-config",
                self.bin.display()
            ),
        );
        assert!(out.contains("witness_quorum"), "{out}");
    }

    fn finish(mut self) {
        self.background.clear();
        assert!(self.built, "the README never builds the binary it aliases");
        for (from, _, used) in &self.database {
            assert!(used, "the cluster walkthrough no longer says {from:?}");
        }
        for (first, _) in SKIPPED {
            assert!(
                self.skipped.contains(first),
                "no README block starts with {first:?} any more: update SKIPPED"
            );
        }
        for ((cmd, _, wanted), done) in CHECKS.iter().zip(&self.checked) {
            assert!(
                done,
                "no README command contains {cmd:?} (to show {wanted:?})"
            );
        }
    }
}

impl Drop for Walk {
    fn drop(&mut self) {
        self.background.clear();
        for args in [
            vec!["dropdb", "-h", "127.0.0.1", "--if-exists", &self.role],
            vec!["dropuser", "-h", "127.0.0.1", "--if-exists", &self.role],
        ] {
            let _ = Command::new(args[0])
                .args(&args[1..])
                .env("PGUSER", "postgres")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The staff username a `custodia staff … login NAME` command signs in.
fn staff_login(cmd: &str) -> Option<&str> {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let staff = words.iter().position(|w| *w == "staff")?;
    let login = words[staff..].iter().position(|w| *w == "login")? + staff;
    words.get(login + 1).copied()
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
