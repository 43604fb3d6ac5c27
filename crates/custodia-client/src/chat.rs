//! `custodia chat`: the command-line client, built on the SDK.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use custodia_sdk::Client;
use custodia_sdk::proto::{Message, MessageState, ServerFrame};
use uuid::Uuid;

use crate::term::clean;

/// Where to find the server.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// Server URL: for `chat`, the client API (e.g. https://127.0.0.1:8443); for `staff`,
    /// the staff API (e.g. https://127.0.0.1:8446).
    #[arg(long, env = "CUSTODIA_SERVER", global = true)]
    pub server: Option<String>,
    /// The server's CA certificate (DATA_DIR/tls/ca.pem).
    #[arg(long, env = "CUSTODIA_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
    /// Which saved sign-in to use, so several accounts can share one machine.
    #[arg(
        long,
        env = "CUSTODIA_PROFILE",
        default_value = DEFAULT_PROFILE,
        global = true
    )]
    pub profile: String,
}

/// The profile used when none is named.
const DEFAULT_PROFILE: &str = "default";

/// `custodia chat …` commands.
#[derive(Subcommand, Debug)]
pub enum ChatCommand {
    /// Create an account.
    Register {
        /// Username (3–32 of a-z 0-9 _ . -).
        username: String,
        /// Date of birth, YYYY-MM-DD.
        #[arg(long)]
        date_of_birth: String,
    },
    /// Sign in and save the session token (mode 0600) for the other commands.
    Login {
        /// Username.
        username: String,
        /// A label for this device.
        #[arg(long, default_value = "custodia chat")]
        device: String,
    },
    /// Sign out and forget the saved token.
    Logout,
    /// Save everything the service holds about you (profile, settings, connections,
    /// blocks, access notices, every conversation with the messages you can see) as a zip
    /// of JSON files with a README.
    Export {
        /// Where to write it (never overwritten).
        file: PathBuf,
    },
    /// Close your account for good: signed out everywhere, every message you sent
    /// deleted for everyone, your data destroyed (copies a legal hold keeps are destroyed
    /// when it ends: you are told how many). Asks for your password to confirm.
    CloseAccount,
    /// Send a message to a user (direct conversation) or a conversation id.
    Send {
        /// A username or a conversation id.
        to: String,
        /// The text.
        text: String,
    },
    /// Print messages as they arrive (and what was missed since the last listen).
    Listen,
    /// Print a conversation's history.
    History {
        /// A username (direct conversation) or a conversation id.
        with: String,
        /// How many of the newest messages.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Report messages you received to the platform's staff, e.g. `report bob 3 4
    /// --category harassment`: their text goes with the franking key you received with
    /// each, so staff see them verified as sent by their sender. Categories:
    /// child_safety, grooming, harassment, spam, self_harm, other.
    Report {
        /// A username (direct conversation) or a conversation id.
        with: String,
        /// The messages' numbers (as `history` shows them, #N).
        #[arg(required = true)]
        seqs: Vec<u64>,
        /// What the report is about.
        #[arg(long)]
        category: String,
        /// A comment for staff (at most 2000 characters).
        #[arg(long)]
        comment: Option<String>,
    },
    /// List your conversations with unread counts.
    Conversations,
    /// Show when staff read messages of yours: role, reason, case, how many, and the
    /// audit log entry that records it.
    Notices,
    /// Your access notices and, with --verify, a check that they are all: your client
    /// reads the whole public audit log from the auditor listener, finds every entry
    /// about you by your own tag key, and reports any read the notice list lacks.
    AccessHistory {
        /// Scan the audit log and compare it with the notices.
        #[arg(long, requires = "log_url")]
        verify: bool,
        /// The server's auditor listener, e.g. https://127.0.0.1:8444.
        #[arg(long)]
        log_url: Option<String>,
        /// A witness whose cosignature the log's checkpoint must carry (its verifier
        /// key). Repeatable.
        #[arg(long = "witness")]
        witnesses: Vec<String>,
        /// How many of the given witnesses must have cosigned. Default: all.
        #[arg(long)]
        quorum: Option<usize>,
    },
    /// Manage groups.
    #[command(subcommand)]
    Group(GroupCommand),
}

/// `custodia chat group …`.
#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// Create a group with you as owner.
    Create {
        /// Title.
        title: String,
        /// Usernames of the first members.
        members: Vec<String>,
    },
    /// Add a member.
    Add {
        /// Conversation id.
        group: Uuid,
        /// Username.
        username: String,
    },
    /// Remove a member (yourself: leave).
    Remove {
        /// Conversation id.
        group: Uuid,
        /// Username.
        username: String,
    },
}

/// Runs one chat command.
pub async fn run(server: ServerArgs, cmd: ChatCommand) -> anyhow::Result<()> {
    let profile = Profile::new(&server.profile)?;
    match cmd {
        ChatCommand::Register {
            username,
            date_of_birth,
        } => {
            let client = connect(&server, &profile, false)?;
            let password = read_password("choose a password: ")?;
            let acct = client
                .register(&username, &password, &date_of_birth)
                .await?;
            // The sign-in must use the same profile, or its session is saved elsewhere.
            let with_profile = if server.profile == DEFAULT_PROFILE {
                String::new()
            } else {
                format!(" --profile {}", clean(&server.profile))
            };
            println!(
                "registered {} ({}); now run: custodia chat{with_profile} login {}",
                clean(&acct.username),
                acct.user_id,
                clean(&acct.username)
            );
        }
        ChatCommand::Login { username, device } => {
            let mut client = connect(&server, &profile, false)?;
            let password = read_password("password: ")?;
            let res = client.login(&username, &password, &device).await?;
            profile.save(client.server(), &username, &res.token)?;
            println!(
                "signed in as {}; token saved to {}",
                clean(&username),
                profile.path.display()
            );
        }
        ChatCommand::Logout => {
            let mut client = connect(&server, &profile, true)?;
            client.logout().await?;
            profile.forget()?;
            println!("signed out");
        }
        ChatCommand::Export { file } => {
            let client = connect(&server, &profile, true)?;
            let mut out = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&file)
                .await
                .with_context(|| format!("creating {} (choose a new file)", file.display()))?;
            let bytes = client.export_to(&mut out).await?;
            out.sync_all().await?;
            println!(
                "wrote {} ({bytes} bytes): your data as a zip of JSON files; README.txt inside says what each is",
                file.display()
            );
        }
        ChatCommand::CloseAccount => {
            let mut client = connect(&server, &profile, true)?;
            let password =
                read_password("closing your account for good; your password to confirm: ")?;
            let closed = client.close_account(&password).await?;
            profile.forget()?;
            println!("{}", clean(&closed.detail));
            println!(
                "your username is free for others from {}",
                local(closed.name_free_from_ms, WHEN)
            );
        }
        ChatCommand::Send { to, text } => {
            let client = connect(&server, &profile, true)?;
            let id = resolve(&client, &to).await?;
            let ack = client.send(id, &Uuid::new_v4().to_string(), &text).await?;
            println!("sent #{} to {id}", ack.seq);
        }
        ChatCommand::Report {
            with,
            seqs,
            category,
            comment,
        } => {
            let client = connect(&server, &profile, true)?;
            let id = resolve(&client, &with).await?;
            let mut messages = Vec::with_capacity(seqs.len());
            for seq in &seqs {
                let page = client
                    .history(id, Some(seq.saturating_sub(1)), None, 1)
                    .await?;
                match page.messages.into_iter().next() {
                    Some(m) if m.seq == *seq => messages.push(m),
                    _ => anyhow::bail!(
                        "there is no message #{seq} in this conversation (see `custodia chat history {}`)",
                        clean(&with)
                    ),
                }
            }
            let r = client
                .report_messages(id, &messages, &category, comment.as_deref())
                .await?;
            println!(
                "reported {} message{} (case {}); staff see each with the franking key you received, verified as sent by its sender",
                messages.len(),
                if messages.len() == 1 { "" } else { "s" },
                r.case_id
            );
        }
        ChatCommand::History { with, limit } => {
            let client = connect(&server, &profile, true)?;
            let id = resolve(&client, &with).await?;
            let names = Names::of(&client, id).await?;
            let page = client.history(id, None, None, limit).await?;
            for m in &page.messages {
                println!("{}", names.line(m));
            }
            if let Some(last) = page.messages.last() {
                client.mark_read(id, last.seq).await?;
            }
        }
        ChatCommand::Notices => {
            let client = connect(&server, &profile, true)?;
            let notices = client.access_notices().await?;
            if notices.is_empty() {
                println!("no staff have read messages of yours");
            }
            for n in &notices {
                println!("{}", notice_line(n));
            }
        }
        ChatCommand::AccessHistory {
            verify,
            log_url,
            witnesses,
            quorum,
        } => {
            let client = connect(&server, &profile, true)?;
            if !verify {
                for n in &client.access_notices().await? {
                    println!("{}", notice_line(n));
                }
                return Ok(());
            }
            let log_url = log_url.context("--verify needs --log-url")?;
            let witnesses = custodia_auditor::WitnessPolicy::new(&witnesses, quorum)?;
            let auditor = connect(
                &ServerArgs {
                    server: Some(log_url),
                    ..server.clone()
                },
                &profile,
                false,
            )?;
            let history = access_history(&client, &auditor, &witnesses).await?;
            print_history(&history);
            let check = history.check;
            if !check.missing.is_empty() {
                bail!(
                    "the log records {} read{} of your messages that the server's notice list lacks",
                    check.missing.len(),
                    if check.missing.len() == 1 { "" } else { "s" }
                );
            }
        }
        ChatCommand::Conversations => {
            let client = connect(&server, &profile, true)?;
            for c in client.conversations().await? {
                let name = match (&c.title, c.kind.as_str()) {
                    (Some(t), _) => t.clone(),
                    (None, _) => Names::of(&client, c.id).await?.others(&profile.username()?),
                };
                println!("{}", conversation_line(&c, &name));
            }
        }
        ChatCommand::Listen => {
            let client = connect(&server, &profile, true)?;
            let me = profile.username()?;
            let cursors: HashMap<Uuid, u64> = profile.cursors();
            let mut conn = client.connect().await?;
            conn.sync(cursors).await?;
            let mut names = Labels::default();
            eprintln!("listening; Ctrl-C to stop");
            while let Some(frame) = conn.next().await {
                match frame? {
                    ServerFrame::Message(m) => {
                        let n = names.of(&client, m.conversation_id, &me).await;
                        println!("[{}] {}", n.label, n.line(&m));
                        // Never past a message not yet shown: the next listen asks for it.
                        profile.save_cursors(&conn.positions())?;
                    }
                    ServerFrame::Membership {
                        conversation_id,
                        username,
                        joined,
                        ..
                    } => {
                        // The members changed: ask again (a title stays; a peer list moves).
                        names.forget(conversation_id);
                        let label = names.of(&client, conversation_id, &me).await.label.clone();
                        let line = match (joined, username == me) {
                            (true, true) => "you were added".to_owned(),
                            (false, true) => "you left or were removed".to_owned(),
                            (true, false) => format!("{} joined", clean(&username)),
                            (false, false) => format!("{} left", clean(&username)),
                        };
                        println!("[{label}] {line}");
                    }
                    ServerFrame::Deleted {
                        conversation_id,
                        seq,
                    } => {
                        let label = &names.of(&client, conversation_id, &me).await.label;
                        println!("[{label}] message #{seq} was deleted");
                    }
                    ServerFrame::AccessNotice(n) => println!("notice: {}", notice_line(&n)),
                    ServerFrame::Error { problem, .. } => {
                        eprintln!("error: {}", clean(&problem.detail));
                    }
                    _ => {}
                }
            }
            bail!("the server closed the connection");
        }
        ChatCommand::Group(g) => {
            let client = connect(&server, &profile, true)?;
            match g {
                GroupCommand::Create { title, members } => {
                    let refs: Vec<&str> = members.iter().map(String::as_str).collect();
                    let c = client.create_group(&title, &refs).await?;
                    println!("created group {} ({} members)", c.id, c.member_count);
                }
                GroupCommand::Add { group, username } => {
                    client.add_member(group, &username).await?;
                    println!("added {}", clean(&username));
                }
                GroupCommand::Remove { group, username } => {
                    client.remove_member(group, &username).await?;
                    println!("removed {}", clean(&username));
                }
            }
        }
    }
    Ok(())
}

fn short(id: Uuid) -> String {
    id.to_string()[..8].to_owned()
}

/// A message's text for a terminal: the whole body, escaped; or what became of it.
fn body_text(m: &Message) -> String {
    match (&m.state, &m.body) {
        (MessageState::Ok, Some(b)) => clean(b),
        (MessageState::Deleted, _) => "(deleted)".into(),
        _ => "(unreadable)".into(),
    }
}

/// The first 60 characters of the last message, escaped.
fn preview(m: &Message) -> String {
    match (&m.state, &m.body) {
        (MessageState::Ok, Some(b)) => clean(&b.chars().take(60).collect::<String>()),
        _ => body_text(m),
    }
}

/// One line of `chat conversations`.
/// A date and time (UTC, to the minute) from Unix milliseconds.
pub(crate) fn utc(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(|t| {
            format!(
                "{}-{:02}-{:02} {:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_default()
}

/// One line of `chat notices`: who (by role), why, how many messages, and the log entry.
/// A member's access history checked against the audit log.
#[derive(Debug)]
pub struct AccessHistory {
    /// The checkpoint the log was read at (signature and witness quorum checked).
    pub checkpoint: custodia_tlog::Checkpoint,
    /// The log's key name.
    pub log: String,
    /// The notices the server lists, newest first.
    pub notices: Vec<custodia_sdk::proto::AccessNotice>,
    /// What the scan found, compared with the notices.
    pub check: custodia_transparency::HistoryCheck,
}

/// Reads the whole audit log from `auditor` (its checkpoint signed by the log key the
/// server names and cosigned by `witnesses`' quorum, every entry checked against it),
/// finds every entry about the member signed in on `client` with their own tag key, and
/// compares the reads with the notices the server lists.
pub async fn access_history(
    client: &Client,
    auditor: &Client,
    witnesses: &custodia_auditor::WitnessPolicy,
) -> anyhow::Result<AccessHistory> {
    use base64::Engine;
    let keys = client.log_key().await?;
    let bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(&keys.key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .context("the server sent a malformed log key")?;
    let log_key = custodia_tlog::NoteVerifier::parse(&keys.log)
        .map_err(|e| anyhow::anyhow!("the server sent a malformed log verifier key: {e}"))?;
    let mut scan =
        custodia_transparency::HistoryScan::new(custodia_transparency::TagKey::from_bytes(bytes));
    let log = custodia_auditor::read_log(
        auditor,
        &log_key,
        witnesses,
        custodia_auditor::Tiles::OnMismatch,
        |i, e| scan.visit(i, e),
    )
    .await
    .context("reading the audit log")?;
    // The notices after the log: every read the checkpoint holds was told before it.
    let size = log.checkpoint.size;
    let notices = client.access_notices().await?;
    let check = scan.check(notices.iter().map(|n| n.log_index).filter(|i| *i < size));
    Ok(AccessHistory {
        checkpoint: log.checkpoint,
        log: log_key.name().to_owned(),
        notices,
        check,
    })
}

/// Prints an access history: the notices, the entries found, and what is missing.
fn print_history(h: &AccessHistory) {
    for n in &h.notices {
        println!("{}", notice_line(n));
    }
    let check = &h.check;
    println!(
        "verified the audit log {}: {} entries, root {}; {} name{} you, {} read{} of your messages",
        clean(&h.log),
        h.checkpoint.size,
        custodia_auditor::hex(&h.checkpoint.root),
        check.found.len(),
        if check.found.len() == 1 { "s" } else { "" },
        check.reads.len(),
        if check.reads.len() == 1 { "" } else { "s" },
    );
    for f in &check.found {
        println!(
            "entry {}  {}  {}{}{}",
            f.index,
            local(f.time_ms, WHEN),
            f.kind.as_str(),
            f.reason
                .as_deref()
                .map(|r| format!(" for {}", clean(r)))
                .unwrap_or_default(),
            f.case
                .as_deref()
                .map(|c| format!(" in case {}", clean(c)))
                .unwrap_or_default(),
        );
    }
    for i in &check.missing {
        println!(
            "MISSING: entry {i} records a read of your messages, but the server lists no notice for it"
        );
    }
    for i in &check.unconfirmed {
        println!(
            "unconfirmed: the notice for entry {i} is not tied to you in the log yet (a deferred read whose release is not logged?)"
        );
    }
    if check.missing.is_empty() {
        println!("every read of your messages in the log has a notice");
    }
}

fn notice_line(n: &custodia_sdk::proto::AccessNotice) -> String {
    let deferred = match (n.deferred_until_ms, n.deferred_until_review) {
        (Some(t), _) => format!(
            " (told late: a non-disclosure order held it until {})",
            local(t, WHEN)
        ),
        (None, true) => " (told late: held until the emergency's second review)".to_owned(),
        (None, false) => String::new(),
    };
    format!(
        "{}  a {} read {} message{} of conversation {} ({} to {}) for {} in case {}; audit log entry {}{deferred}",
        local(n.read_at_ms, WHEN),
        clean(&n.role),
        n.messages,
        if n.messages == 1 { "" } else { "s" },
        short(n.conversation_id),
        local(n.first_sent_at_ms, WHEN),
        local(n.last_sent_at_ms, WHEN),
        clean(&n.reason),
        n.case_id,
        n.log_index
    )
}

fn conversation_line(c: &custodia_sdk::proto::Conversation, name: &str) -> String {
    let preview = c.last_message.as_ref().map(preview).unwrap_or_default();
    format!(
        "{}  {:<24} {:>3} unread  {}",
        c.id,
        clean(name),
        c.unread,
        preview
    )
}

/// Usernames of a conversation's members, for display.
struct Names {
    /// Members' usernames by account id.
    members: HashMap<Uuid, String>,
    /// How `listen` names the conversation: a group's title, or the other members.
    label: String,
}

impl Names {
    async fn of(client: &Client, id: Uuid) -> anyhow::Result<Self> {
        let c = client.conversation(id).await?;
        let members: HashMap<Uuid, String> = c
            .members
            .into_iter()
            .map(|m| (m.user_id, m.username))
            .collect();
        Ok(Self {
            label: c.title.as_deref().map(clean).unwrap_or_default(),
            members,
        })
    }

    /// One line of `chat history` and `chat listen`: the whole message, escaped.
    fn line(&self, m: &Message) -> String {
        let who = self
            .members
            .get(&m.sender_id)
            .map(|n| clean(n))
            .unwrap_or_else(|| short(m.sender_id));
        let when = local(m.sent_at_ms, "%H:%M");
        format!("#{} {when} {who}: {}", m.seq, body_text(m))
    }

    fn others(&self, me: &str) -> String {
        let mut v: Vec<String> = self
            .members
            .values()
            .filter(|n| *n != me)
            .map(|n| clean(n))
            .collect();
        v.sort();
        v.join(", ")
    }
}

/// The conversations `listen` has named so far.
#[derive(Default)]
struct Labels(HashMap<Uuid, Names>);

impl Labels {
    /// A conversation's names, asked of the server the first time (a conversation the
    /// member has left is named by its id).
    async fn of(&mut self, client: &Client, id: Uuid, me: &str) -> &Names {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.0.entry(id) {
            let names = match Names::of(client, id).await {
                Ok(mut n) => {
                    if n.label.is_empty() {
                        n.label = n.others(me);
                    }
                    n
                }
                Err(_) => Names {
                    members: HashMap::new(),
                    label: short(id),
                },
            };
            slot.insert(names);
        }
        &self.0[&id]
    }

    fn forget(&mut self, id: Uuid) {
        self.0.remove(&id);
    }
}

/// A date and time as members see them: their own time zone, named.
const WHEN: &str = "%Y-%m-%d %H:%M %Z";

/// A time in the member's own time zone (`TZ`, else the system's), in `strftime` form.
fn local(ms: i64, format: &str) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| {
            t.to_zoned_datetime(jiff::tz::TimeZone::system())
                .strftime(format)
                .to_string()
        })
        .unwrap_or_default()
}

/// A username or a conversation id.
async fn resolve(client: &Client, target: &str) -> anyhow::Result<Uuid> {
    if let Ok(id) = target.parse::<Uuid>() {
        return Ok(id);
    }
    Ok(client.open_direct(target).await?.id)
}

pub(crate) fn read_password(prompt: &str) -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("CUSTODIA_PASSWORD") {
        return Ok(p);
    }
    rpassword::prompt_password(prompt).context("reading the password (or set CUSTODIA_PASSWORD)")
}

/// A client for `--server`/`--ca-cert`, not signed in.
pub fn client_for(server: &ServerArgs) -> anyhow::Result<Client> {
    connect(server, &Profile::new(&server.profile)?, false)
}

pub(crate) fn connect(
    server: &ServerArgs,
    profile: &Profile,
    signed_in: bool,
) -> anyhow::Result<Client> {
    let saved = profile.load();
    let url = server
        .server
        .clone()
        .or_else(|| saved.get("server").cloned())
        .context("no server: pass --server https://HOST:PORT or set CUSTODIA_SERVER")?;
    let ca_path = server.ca_cert.clone().context(
        "no CA certificate: pass --ca-cert DATA_DIR/tls/ca.pem or set CUSTODIA_CA_CERT (serve prints its path)",
    )?;
    let ca = fs::read(&ca_path)
        .with_context(|| format!("reading the CA certificate {}", ca_path.display()))?;
    let client = Client::new(&url, &ca)?;
    if !signed_in {
        return Ok(client);
    }
    let token = saved.get("token").context(
        "not signed in: run `custodia chat login USERNAME` (or `custodia staff login`) first",
    )?;
    Ok(client.with_token(token.clone()))
}

/// A saved sign-in: `key=value` lines in the user's config directory, mode 0600.
/// A saved sign-in: server, username, token (mode 0600 under the config directory).
pub(crate) struct Profile {
    path: PathBuf,
}

impl Profile {
    pub(crate) fn new(name: &str) -> anyhow::Result<Self> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!("profile names are letters, digits, '-' and '_'");
        }
        let base = match std::env::var_os("CUSTODIA_CONFIG_DIR") {
            Some(d) => PathBuf::from(d),
            None => dirs::config_dir()
                .context("no config directory; set CUSTODIA_CONFIG_DIR")?
                .join("custodia"),
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&base)?;
        Ok(Self {
            path: base.join(format!("{name}.session")),
        })
    }

    fn load(&self) -> HashMap<String, String> {
        fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn username(&self) -> anyhow::Result<String> {
        self.load()
            .get("username")
            .cloned()
            .context("not signed in")
    }

    fn write(&self, map: &HashMap<String, String>) -> anyhow::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        let mut keys: Vec<_> = map.keys().collect();
        keys.sort();
        for k in keys {
            writeln!(f, "{k}={}", map[k])?;
        }
        f.sync_all()?;
        fs::rename(&tmp, &self.path)?;
        Ok(())
    }

    pub(crate) fn save(&self, server: &str, username: &str, token: &str) -> anyhow::Result<()> {
        let map = HashMap::from([
            ("server".to_owned(), server.to_owned()),
            ("username".to_owned(), username.to_owned()),
            ("token".to_owned(), token.to_owned()),
        ]);
        self.write(&map)
    }

    fn cursors(&self) -> HashMap<Uuid, u64> {
        self.load()
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("seen.")?.parse().ok()?, v.parse().ok()?)))
            .collect()
    }

    fn save_cursors(&self, seen: &HashMap<Uuid, u64>) -> anyhow::Result<()> {
        let mut map = self.load();
        for (k, v) in seen {
            map.insert(format!("seen.{k}"), v.to_string());
        }
        self.write(&map)
    }

    pub(crate) fn forget(&self) -> anyhow::Result<()> {
        match fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn message(body: &str) -> Message {
        Message {
            conversation_id: Uuid::nil(),
            seq: 3,
            id: Uuid::nil(),
            client_id: "c".into(),
            sender_id: Uuid::nil(),
            sent_at_ms: 1_764_000_000_000,
            state: MessageState::Ok,
            body: Some(body.into()),
            franking_key: None,
        }
    }

    proptest! {
        /// Every line `history`, `listen` and `conversations` print from untrusted text is
        /// one line with no escape byte, however hostile the text and the names.
        #[test]
        fn chat_lines_hold_any_text_on_one_line(body in crate::term::tests::nasty(), name in crate::term::tests::nasty()) {
            let mut names = Names {
                members: HashMap::from([(Uuid::nil(), name.clone())]),
                label: String::new(),
            };
            names.label = names.others("someone else");
            let m = message(&body);
            let conversation = custodia_sdk::proto::Conversation {
                id: Uuid::nil(),
                kind: "group".into(),
                title: Some(name.clone()),
                last_seq: 3,
                read_seq: 2,
                unread: 1,
                member_count: 2,
                last_message: Some(m.clone()),
                members: Vec::new(),
                created_at_ms: 0,
            };
            let listen = format!("[{}] {}", names.label, names.line(&m));
            for line in [names.line(&m), listen, conversation_line(&conversation, &name)] {
                prop_assert!(crate::term::tests::one_safe_line(&line), "{line:?}");
            }
            prop_assert!(names.line(&m).contains(&clean(&body)), "the whole body is shown");
        }
    }
}
