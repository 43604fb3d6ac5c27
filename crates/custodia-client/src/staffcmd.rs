//! `custodia staff …`: the governed-access workflow from the command line, on the staff
//! API (`--server https://HOST:8446`): sign in with password and TOTP, manage staff, see
//! cases, ask for access, approve or deny, read within a grant, revoke.

use std::io::BufRead;

use anyhow::Context;
use clap::Subcommand;
use custodia_sdk::proto::staff as wire;
use custodia_sdk::proto::{Message, MessageState};
use uuid::Uuid;

use crate::chat::{Profile, ServerArgs, connect, read_password};
use crate::term::{clean, quoted};

/// `custodia staff …` commands. Sign-ins are saved per `--profile`, apart from chat's.
#[derive(Subcommand, Debug)]
pub enum StaffCommand {
    /// Sign in with password and the authenticator's code; saves the staff token.
    Login {
        /// Staff username.
        username: String,
    },
    /// Sign out and forget the saved token.
    Logout,
    /// Who is signed in.
    Whoami,
    /// List staff accounts (admins, auditors).
    Accounts,
    /// Enrol a new staff account with the code you were handed: choose your password and
    /// receive your TOTP secret (no sign-in needed).
    Enrol {
        /// Your staff username.
        username: String,
        /// The one-time enrolment code.
        #[arg(long)]
        code: String,
    },
    /// Change your own password (asks for the current one, then the new one).
    Password,
    /// Replace your own TOTP secret (asks for your password); prints the new one.
    Totp,
    /// Propose a staff account (admins); a second person approves it with
    /// `approve-change`, and receives the code the new member enrols with.
    CreateAccount {
        /// Username.
        username: String,
        /// moderator, senior_moderator, legal_officer, auditor or admin.
        #[arg(long)]
        role: String,
    },
    /// List proposed staff changes (admins, auditors).
    Changes,
    /// Approve a proposed staff change as its second person (another admin, or the
    /// auditor while there is one admin).
    ApproveChange {
        /// Change id.
        id: Uuid,
    },
    /// Deny a proposed staff change.
    DenyChange {
        /// Change id.
        id: Uuid,
    },
    /// Propose a staff account's new role, or deactivate it at once (admins).
    SetRole {
        /// Staff id.
        id: Uuid,
        /// The new role.
        #[arg(long)]
        role: String,
        /// Deactivate the account (ends its sessions).
        #[arg(long)]
        inactive: bool,
    },
    /// List cases.
    Cases,
    /// Show a case, with the reported messages as disclosed (logged) and its requests.
    Case {
        /// Case id.
        id: Uuid,
    },
    /// Ask for access within a case.
    Request {
        /// Case id.
        #[arg(long)]
        case: Uuid,
        /// report_review, legal_process, emergency_disclosure, security_incident,
        /// user_self_access or support_with_consent.
        #[arg(long)]
        reason: String,
        /// First message number (default: the first the case covers, as `staff case`
        /// shows).
        #[arg(long)]
        from: Option<u64>,
        /// Last message number (default: the last the case covers).
        #[arg(long)]
        to: Option<u64>,
        /// metadata or content.
        #[arg(long, default_value = "content")]
        tier: String,
        /// Grant length once approved, in seconds.
        #[arg(long, default_value_t = 3600)]
        duration: u64,
        /// Why.
        #[arg(long)]
        justification: String,
    },
    /// Show an access request.
    Show {
        /// Request id.
        id: Uuid,
    },
    /// Approve a request (an eligible approver, not its requester).
    Approve {
        /// Request id.
        id: Uuid,
        /// Why.
        #[arg(long)]
        justification: String,
    },
    /// Deny a request.
    Deny {
        /// Request id.
        id: Uuid,
        /// Why.
        #[arg(long)]
        justification: String,
    },
    /// Read within an approved grant (logged before anything is shown).
    Read {
        /// Request id.
        id: Uuid,
    },
    /// Save a case's preserved file under an evidence grant (the read is logged first),
    /// e.g. `read-file REQUEST_ID FILE_ID --out evidence.bin` (`case` lists the files).
    ReadFile {
        /// Request id.
        id: Uuid,
        /// The preserved file's id.
        file: Uuid,
        /// Where to write it (never overwritten).
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Revoke a request or grant.
    Revoke {
        /// Request id.
        id: Uuid,
    },
    /// Complete a grant (its requester).
    Complete {
        /// Request id.
        id: Uuid,
    },
    /// Record that a legal case's non-disclosure order was extended (legal officers).
    ExtendOrder {
        /// The case.
        case: Uuid,
        /// The extended order's last day (YYYY-MM-DD, UTC).
        #[arg(long)]
        until: String,
        /// SHA-256 of the extending order's document (64 hex digits).
        #[arg(long)]
        document_sha256: String,
    },
    /// Record that a legal case's non-disclosure order was lifted: the members whose
    /// messages were read are told now (legal officers).
    LiftOrder {
        /// The case.
        case: Uuid,
        /// SHA-256 of the lifting document (64 hex digits).
        #[arg(long)]
        document_sha256: String,
    },
    /// Legal requests: intake, list, show, review (legal officers).
    #[command(subcommand)]
    Legal(LegalCommand),
    /// Print the transparency report over a period at the log's last checkpoint: JSON, or
    /// the HTML page (the same bytes `custodia log report` computes from the tiles).
    Report {
        /// The first day (YYYY-MM-DD, UTC).
        #[arg(long)]
        from: String,
        /// The last day, included.
        #[arg(long)]
        to: String,
        /// The HTML page instead of JSON.
        #[arg(long)]
        html: bool,
    },
}

/// `custodia staff legal …`.
#[derive(Subcommand, Debug)]
pub enum LegalCommand {
    /// Enter a legal request as served, e.g. `intake --agency "Metropolitan Police"
    /// --country GB --officer "D. Smith" --badge 4411 --email d.smith@met.police.uk
    /// --process search_warrant --target alice --data content --from 2026-01-01 --to 2026-03-31`.
    Intake(Box<IntakeArgs>),
    /// List legal requests, newest first.
    List,
    /// Show one legal request.
    Show {
        /// Its id.
        id: Uuid,
    },
    /// Place preservation holds for a legal request (a preservation request, or an
    /// accepted one): each named account's conversations over its period, for 90 days.
    Hold {
        /// The legal request's id.
        id: Uuid,
    },
    /// Produce an accepted legal request: open its cases and ask for access to exactly the
    /// accounts, data and period it covers (the requests then need their approvals).
    Produce {
        /// The legal request's id.
        id: Uuid,
    },
    /// List a legal request's holds.
    Holds {
        /// The legal request's id.
        id: Uuid,
    },
    /// Extend a hold by 90 days (once only).
    Extend {
        /// The hold's id.
        hold: Uuid,
    },
    /// Release a hold: what it kept from deletion is destroyed.
    Release {
        /// The hold's id.
        hold: Uuid,
    },
    /// Build the disclosure package of a produced request once its grants are approved:
    /// reads them (logged), signs, and encrypts to the agency's age key, e.g. `package ID
    /// --recipient age1… --out LR-2026-000001.tar.age`.
    Package {
        /// The legal request's id.
        id: Uuid,
        /// The agency's age public key (age1…).
        #[arg(long)]
        recipient: String,
        /// Where to write the package (never overwritten).
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Save a document served with a legal request (numbered from 1 as `show` lists them).
    Document {
        /// The legal request's id.
        id: Uuid,
        /// Which document.
        number: u32,
        /// Where to write it (never overwritten).
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Review a legal request: --full, --partial with --accept and --narrowing, or
    /// --reject REASON.
    Review {
        /// Its id.
        id: Uuid,
        /// Accept it as served.
        #[arg(long, conflicts_with_all = ["partial", "reject"])]
        full: bool,
        /// Accept part of it (give --accept and --narrowing).
        #[arg(long, conflicts_with = "reject", requires_all = ["accept", "narrowing"])]
        partial: bool,
        /// Reject it: invalid_process, incomplete, overbroad, wrong_entity,
        /// no_such_account or insufficient_for_tier.
        #[arg(long)]
        reject: Option<String>,
        /// A category accepted (partial). Repeatable.
        #[arg(long)]
        accept: Vec<String>,
        /// How the acceptance narrows the request (partial).
        #[arg(long)]
        narrowing: Option<String>,
    },
}

/// `custodia staff legal intake` options: what was served.
#[derive(clap::Args, Debug)]
pub struct IntakeArgs {
    /// The agency's name.
    #[arg(long)]
    pub agency: String,
    /// The agency's country (ISO 3166-1 alpha-2, e.g. GB).
    #[arg(long)]
    pub country: String,
    /// The agency's state or region.
    #[arg(long)]
    pub subdivision: Option<String>,
    /// The officer's name.
    #[arg(long)]
    pub officer: String,
    /// The officer's badge number or official id.
    #[arg(long)]
    pub badge: String,
    /// The officer's official e-mail address.
    #[arg(long)]
    pub email: String,
    /// subpoena, court_order, search_warrant, mutual_legal_assistance,
    /// preservation_request, emergency_request or other.
    #[arg(long)]
    pub process: String,
    /// The issuing court.
    #[arg(long)]
    pub court: Option<String>,
    /// An account named, by username or account id. Repeatable.
    #[arg(long = "target", required = true)]
    pub targets: Vec<String>,
    /// Data asked for: subscriber, metadata or content. Repeatable.
    #[arg(long = "data", required = true)]
    pub categories: Vec<String>,
    /// The first day covered (YYYY-MM-DD).
    #[arg(long)]
    pub from: String,
    /// The last day covered (YYYY-MM-DD).
    #[arg(long)]
    pub to: String,
    /// The authority that issued a non-disclosure order, if one came with it.
    #[arg(long)]
    pub nondisclosure_authority: Option<String>,
    /// The order's last day (YYYY-MM-DD); leave out if it gives none.
    #[arg(long, requires = "nondisclosure_authority")]
    pub nondisclosure_until: Option<String>,
    /// For an emergency request: the facts of the imminent risk.
    #[arg(long)]
    pub emergency_basis: Option<String>,
    /// A document served (the warrant, its schedule, …): a file, stored sealed with its
    /// SHA-256 recorded. Repeatable.
    #[arg(long = "document")]
    pub documents: Vec<std::path::PathBuf>,
    /// For the legal process that follows an emergency request: that request's reference
    /// (LR-YYYY-NNNNNN).
    #[arg(long)]
    pub follows_up: Option<String>,
}

/// A served document file, read for upload.
fn document_upload(path: &std::path::Path) -> anyhow::Result<wire::DocumentUpload> {
    use base64::Engine;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .with_context(|| format!("{} is not a file", path.display()))?;
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let media_type = match ext.as_str() {
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "tif" | "tiff" => "image/tiff",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        _ => "application/octet-stream",
    };
    Ok(wire::DocumentUpload {
        name,
        media_type: media_type.into(),
        content_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
    })
}

/// Writes `bytes` to a new file at `out` (refusing to overwrite one).
fn write_new(out: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .with_context(|| format!("creating {} (it must not exist yet)", out.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Runs one staff command.
pub async fn run(server: ServerArgs, cmd: StaffCommand) -> anyhow::Result<()> {
    let profile = Profile::new(&format!("staff-{}", server.profile))?;
    if let StaffCommand::Enrol { username, code } = &cmd {
        let c = connect(&server, &profile, false)?;
        let password = read_password("choose a password: ")?;
        let e = c.staff_enrol(username, code, &password).await?;
        println!(
            "enrolled {} ({})",
            clean(&e.staff.username),
            clean(&e.staff.role)
        );
        println!(
            "TOTP secret for an authenticator app (shown once): {}",
            e.totp_uri
        );
        println!(
            "then sign in with: custodia staff --profile {} login {}",
            server.profile, e.staff.username
        );
        return Ok(());
    }
    if let StaffCommand::Login { username } = &cmd {
        let mut c = connect(&server, &profile, false)?;
        let password = read_password("password: ")?;
        let code = read_code()?;
        let s = c.staff_sign_in(username, &password, &code).await?;
        profile.save(c.server(), username, &s.token)?;
        println!(
            "signed in as {} ({}); the session ends in {} minutes",
            clean(&s.staff.username),
            clean(&s.staff.role),
            (s.expires_at_ms - now_ms()) / 60_000
        );
        return Ok(());
    }
    let c = connect(&server, &profile, true)?;
    match cmd {
        StaffCommand::Login { .. } | StaffCommand::Enrol { .. } => {
            unreachable!("handled above")
        }
        StaffCommand::Password => {
            let current = read_password("current password: ")?;
            let new = match std::env::var("CUSTODIA_NEW_PASSWORD") {
                Ok(p) => p,
                Err(_) => rpassword::prompt_password("new password: ")
                    .context("reading the new password (or set CUSTODIA_NEW_PASSWORD)")?,
            };
            c.staff_change_password(&current, &new).await?;
            println!("password changed");
        }
        StaffCommand::Totp => {
            let password = read_password("password: ")?;
            let e = c.staff_reenrol_totp(&password).await?;
            println!(
                "TOTP secret for an authenticator app (shown once; the old one no longer works): {}",
                e.totp_uri
            );
        }
        StaffCommand::Changes => {
            for ch in c.staff_changes().await? {
                print_change(&ch);
            }
        }
        StaffCommand::ApproveChange { id } | StaffCommand::DenyChange { id } => {
            let approve = matches!(cmd, StaffCommand::ApproveChange { .. });
            let d = c.staff_decide_change(id, approve).await?;
            print_change(&d.change);
            if let Some(code) = &d.enrolment_code {
                println!(
                    "enrolment code for {} (shown once; give it to them in person or another \
                     trusted channel, never to the proposer): {code}",
                    d.change.username
                );
                println!(
                    "they enrol with: custodia staff --profile {0} enrol {0} --code CODE",
                    d.change.username
                );
            }
        }
        StaffCommand::Logout => {
            let mut c = c;
            let _ = c.staff_sign_out().await;
            profile.forget()?;
            println!("signed out");
        }
        StaffCommand::Whoami => {
            let me = c.staff_me().await?;
            println!("{} ({}) {}", clean(&me.username), clean(&me.role), me.id);
        }
        StaffCommand::Accounts => {
            for s in c.staff_accounts().await? {
                let state = match (s.active, s.enrolled) {
                    (false, _) => "inactive",
                    (true, false) => "not enrolled yet",
                    (true, true) => "active",
                };
                println!(
                    "{}  {:<16} {:<16} {state}",
                    s.id,
                    clean(&s.username),
                    clean(&s.role)
                );
            }
        }
        StaffCommand::CreateAccount { username, role } => {
            let ch = c.staff_create(&username, &role).await?;
            print_change(&ch);
            println!(
                "a second person approves it with: custodia staff approve-change {}",
                ch.id
            );
        }
        StaffCommand::SetRole { id, role, inactive } => {
            let ch = c.staff_update(id, &role, !inactive).await?;
            print_change(&ch);
            if ch.status == "pending" {
                println!(
                    "a second person approves it with: custodia staff approve-change {}",
                    ch.id
                );
            }
        }
        StaffCommand::Cases => {
            for k in c.cases().await? {
                println!("{}", case_line(&k));
            }
        }
        StaffCommand::Case { id } => {
            let k = c.case(id).await?;
            println!(
                "case {} ({}) conversation {} covers messages #{} to #{} (an access request \
                 asks within them)",
                k.id,
                clean(&k.kind),
                k.conversation_id,
                k.from_seq,
                k.to_seq
            );
            if let Some(comment) = &k.comment {
                println!("reporter's comment: {}", quoted(comment));
            }
            for f in &k.files {
                println!("preserved file {f} (opened only under an evidence grant)");
            }
            for e in &k.evidence {
                println!("{}", evidence_line(e));
            }
            for r in c.case_requests(id).await? {
                print_request(&r);
            }
        }
        StaffCommand::Request {
            case,
            reason,
            from,
            to,
            tier,
            duration,
            justification,
        } => {
            let (from_seq, to_seq) = match (from, to) {
                (Some(f), Some(t)) => (f, t),
                (f, t) => {
                    let k = c.case(case).await?;
                    (f.unwrap_or(k.from_seq), t.unwrap_or(k.to_seq))
                }
            };
            let r = c
                .request_access(&wire::CreateAccessRequest {
                    case_id: case,
                    reason,
                    from_seq,
                    to_seq,
                    tier,
                    duration_secs: duration,
                    justification,
                })
                .await?;
            print_request(&r);
        }
        StaffCommand::Show { id } => print_request(&c.access_request(id).await?),
        StaffCommand::Approve { id, justification } => {
            print_request(&c.decide(id, true, &justification).await?)
        }
        StaffCommand::Deny { id, justification } => {
            print_request(&c.decide(id, false, &justification).await?)
        }
        StaffCommand::Revoke { id } => print_request(&c.revoke(id).await?),
        StaffCommand::Complete { id } => print_request(&c.complete(id).await?),
        StaffCommand::Legal(cmd) => legal(&c, cmd).await?,
        StaffCommand::ExtendOrder {
            case,
            until,
            document_sha256,
        } => {
            let k = c
                .extend_nondisclosure(
                    case,
                    &wire::ExtendNondisclosure {
                        until_ms: end_of_day_ms(&until, "--until")?,
                        document_sha256,
                    },
                )
                .await?;
            println!("case {} order extended; notices wait until {until}", k.id);
        }
        StaffCommand::LiftOrder {
            case,
            document_sha256,
        } => {
            let k = c
                .lift_nondisclosure(case, &wire::LiftNondisclosure { document_sha256 })
                .await?;
            println!(
                "case {}: order lifted; the members whose messages were read are told now",
                k.id
            );
        }
        // The report is our own server's output (all escaped in the page), printed as is.
        StaffCommand::Report { from, to, html } => {
            print!("{}", c.transparency_report(&from, &to, html).await?);
        }
        StaffCommand::ReadFile { id, file, out } => {
            if out.exists() {
                anyhow::bail!("{} exists already: choose another --out", out.display());
            }
            let (content_type, bytes) = c.read_evidence(id, file).await?;
            write_new(&out, &bytes)?;
            println!(
                "wrote {} ({} bytes, {}); the read is in the audit log",
                out.display(),
                bytes.len(),
                clean(&content_type)
            );
        }
        StaffCommand::Read { id } => {
            let read = c.read_grant(id).await?;
            println!(
                "logged as audit entry {} before release",
                read.receipt.index
            );
            for m in &read.messages {
                println!("{}", read_line(m, &read.usernames));
            }
        }
    }
    Ok(())
}

/// One line of `staff read`: the message's text quoted (so it cannot pass for more lines
/// or more fields), or what became of it.
fn read_line(m: &Message, usernames: &std::collections::BTreeMap<Uuid, String>) -> String {
    let text = match m.state {
        MessageState::Ok => quoted(m.body.as_deref().unwrap_or("")),
        MessageState::Deleted => "(deleted)".into(),
        MessageState::Withheld => "(metadata only)".into(),
        _ => "(unreadable)".into(),
    };
    format!(
        "#{} {} {}: {text}",
        m.seq,
        crate::chat::utc(m.sent_at_ms),
        name_or_id(usernames.get(&m.sender_id).map(String::as_str), m.sender_id)
    )
}

/// A member as staff see them: their username, else their account id.
fn name_or_id(username: Option<&str>, id: Uuid) -> String {
    username.map_or_else(|| id.to_string(), clean)
}

/// One line of `staff case` per reported message: the program's own mark first, then the
/// reporter's text quoted — a text cannot forge a mark or a line.
fn evidence_line(e: &wire::Evidence) -> String {
    let mark = if e.verified {
        format!(
            "verified: sent by {} at {}",
            name_or_id(e.sender_username.as_deref(), e.sender_id),
            crate::chat::utc(e.sent_at_ms)
        )
    } else {
        "UNVERIFIED".to_owned()
    };
    let text = e
        .body
        .as_deref()
        .map_or_else(|| "(no text given)".to_owned(), quoted);
    format!("  #{} [{mark}] {text}", e.seq)
}

/// One line of `staff cases`.
fn case_line(k: &wire::Case) -> String {
    let verified = k.evidence.iter().filter(|e| e.verified).count();
    format!(
        "{}  {:<6} {:<6} {:<12} conversation {} messages {}-{} ({} reported, {verified} verified)",
        k.id,
        if k.priority == "high" {
            "HIGH"
        } else {
            "normal"
        },
        clean(&k.kind),
        clean(
            k.category
                .as_deref()
                .or(k.reference.as_deref())
                .unwrap_or("-")
        ),
        k.conversation_id,
        k.from_seq,
        k.to_seq,
        k.reported.len()
    )
}

fn print_change(ch: &wire::StaffChange) {
    println!(
        "staff change {} {} {} role {} {}: {}",
        ch.id,
        clean(&ch.kind),
        clean(&ch.username),
        clean(&ch.role),
        if ch.active { "active" } else { "inactive" },
        clean(&ch.status)
    );
}

async fn legal(c: &custodia_sdk::Client, cmd: LegalCommand) -> anyhow::Result<()> {
    match cmd {
        LegalCommand::Intake(args) => {
            let IntakeArgs {
                agency,
                country,
                subdivision,
                officer,
                badge,
                email,
                process,
                court,
                targets,
                categories,
                from,
                to,
                nondisclosure_authority,
                nondisclosure_until,
                emergency_basis,
                documents,
                follows_up,
            } = *args;
            let documents = documents
                .iter()
                .map(|p| document_upload(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let r = c
                .receive_legal_request(&wire::NewLegalRequest {
                    agency: wire::AgencyInfo {
                        name: agency,
                        country,
                        subdivision,
                    },
                    officer: wire::OfficerInfo {
                        name: officer,
                        badge,
                        email,
                    },
                    process,
                    court,
                    targets,
                    categories,
                    from,
                    to,
                    nondisclosure: nondisclosure_authority.map(|authority| {
                        wire::NondisclosureInfo {
                            authority,
                            until: nondisclosure_until,
                        }
                    }),
                    emergency_basis,
                    documents,
                    follows_up,
                })
                .await?;
            println!(
                "received legal request {} (id {})",
                clean(&r.reference),
                r.id
            );
            print_legal(&r);
        }
        LegalCommand::List => {
            let all = c.legal_requests().await?;
            if all.is_empty() {
                println!("no legal requests");
            }
            for r in &all {
                println!(
                    "{}  {}  {} ({})  {} account{}  {}  {}  {}{}",
                    clean(&r.reference),
                    r.id,
                    clean(&r.agency.name),
                    clean(&r.agency.country),
                    r.targets.len(),
                    if r.targets.len() == 1 { "" } else { "s" },
                    clean(&r.process),
                    clean(&r.categories.join(",")),
                    r.review
                        .as_ref()
                        .map_or_else(|| "awaiting review".to_owned(), |v| clean(&v.outcome)),
                    if r.follow_up_missing {
                        "  FOLLOW-UP MISSING"
                    } else {
                        ""
                    }
                );
            }
        }
        LegalCommand::Show { id } => print_legal(&c.legal_request(id).await?),
        LegalCommand::Hold { id } => c.place_holds(id).await?.iter().for_each(print_hold),
        LegalCommand::Produce { id } => {
            for r in &c.produce(id).await? {
                print_request(r);
            }
        }
        LegalCommand::Holds { id } => {
            let all = c.holds(id).await?;
            if all.is_empty() {
                println!("no holds for this request");
            }
            all.iter().for_each(print_hold);
        }
        LegalCommand::Extend { hold } => print_hold(&c.extend_hold(hold).await?),
        LegalCommand::Release { hold } => print_hold(&c.release_hold(hold).await?),
        LegalCommand::Package { id, recipient, out } => {
            if out.exists() {
                anyhow::bail!("{} exists already: choose another --out", out.display());
            }
            let bytes = c.build_package(id, &recipient).await?;
            write_new(&out, &bytes)?;
            println!(
                "wrote {} ({} bytes, age-encrypted to {})",
                out.display(),
                bytes.len(),
                clean(recipient.trim())
            );
            println!(
                "the agency checks it with: custodia disclosure verify {} --identity KEY --package-key KEY --log-key KEY",
                out.display()
            );
        }
        LegalCommand::Document { id, number, out } => {
            let position = number
                .checked_sub(1)
                .context("documents are numbered from 1, as `staff legal show` lists them")?;
            let (media_type, bytes) = c.served_document(id, position).await?;
            write_new(&out, &bytes)?;
            println!(
                "wrote {} ({} bytes, {})",
                out.display(),
                bytes.len(),
                clean(&media_type)
            );
        }
        LegalCommand::Review {
            id,
            full,
            partial,
            reject,
            accept,
            narrowing,
        } => {
            let outcome = match (full, partial, &reject) {
                (true, _, _) => "full",
                (_, true, _) => "partial",
                (_, _, Some(_)) => "rejected",
                _ => anyhow::bail!(
                    "say how: --full, --partial (with --accept and --narrowing) or --reject REASON"
                ),
            };
            let r = c
                .review_legal_request(
                    id,
                    &wire::ReviewLegalRequest {
                        outcome: outcome.into(),
                        reason: reject,
                        narrowing,
                        accepted: accept,
                    },
                )
                .await?;
            print_legal(&r);
        }
    }
    Ok(())
}

fn print_hold(h: &wire::Hold) {
    let state = match (&h.ended, h.ended_at_ms) {
        (Some(how), Some(at)) => format!("{} {}", clean(how), crate::chat::utc(at)),
        _ => format!(
            "holds until {}{}",
            crate::chat::utc(h.expires_at_ms),
            if h.extended { " (extended)" } else { "" }
        ),
    };
    println!(
        "hold {}  account {}  {} conversation{}  messages {} to {}  {state}",
        h.id,
        h.account,
        h.conversations.len(),
        if h.conversations.len() == 1 { "" } else { "s" },
        clean(&h.from),
        clean(&h.to),
    );
}

fn print_legal(r: &wire::LegalRequest) {
    println!("reference  {}", clean(&r.reference));
    println!(
        "agency     {} ({}{})",
        clean(&r.agency.name),
        clean(&r.agency.country),
        r.agency
            .subdivision
            .as_deref()
            .map(|s| format!(", {}", clean(s)))
            .unwrap_or_default()
    );
    println!(
        "officer    {}, {}, {}{}",
        clean(&r.officer.name),
        clean(&r.officer.badge),
        clean(&r.officer.email),
        if r.officer_domain_verified {
            ""
        } else {
            "  (NOT a verified agency domain: confirm the request through a known channel)"
        }
    );
    println!(
        "process    {}{}",
        clean(&r.process),
        r.court
            .as_deref()
            .map(|c| format!(", {}", clean(c)))
            .unwrap_or_default()
    );
    for t in &r.targets {
        match t.account {
            Some(a) => println!("target     {} = account {a}", clean(&t.given)),
            None => println!("target     {} (no such account)", clean(&t.given)),
        }
    }
    println!(
        "data       {} from {} to {}",
        clean(&r.categories.join(", ")),
        clean(&r.from),
        clean(&r.to)
    );
    if let Some(n) = &r.nondisclosure {
        println!(
            "order      non-disclosure by {}{}",
            clean(&n.authority),
            n.until
                .as_deref()
                .map(|u| format!(" until {}", clean(u)))
                .unwrap_or_else(|| " (no end given)".into())
        );
    }
    if let Some(b) = &r.emergency_basis {
        println!("emergency  {}", quoted(b));
        if r.follow_up_missing {
            println!(
                "follow-up  MISSING: no legal process has followed this emergency request yet"
            );
        }
        for f in &r.followed_up_by {
            println!("follow-up  {}", clean(f));
        }
    }
    if let Some(f) = &r.follows_up {
        println!("follows    emergency request {}", clean(f));
    }
    for (n, d) in r.documents.iter().enumerate() {
        println!(
            "document   {}. {} ({}, {} bytes) sha256 {}",
            n + 1,
            clean(&d.name),
            clean(&d.media_type),
            d.size,
            clean(&d.sha256)
        );
    }
    match &r.review {
        None => println!("review     awaiting review"),
        Some(v) => {
            println!(
                "review     {}{}; accepted: {}",
                clean(&v.outcome),
                v.reason
                    .as_deref()
                    .map(|x| format!(" ({})", clean(x)))
                    .unwrap_or_default(),
                if v.accepted.is_empty() {
                    "nothing".to_owned()
                } else {
                    clean(&v.accepted.join(", "))
                }
            );
            if let Some(n) = &v.narrowing {
                println!("narrowed   {}", quoted(n));
            }
        }
    }
}

fn print_request(r: &wire::AccessRequest) {
    println!(
        "request {} {} {} messages {}-{} {}: {} ({} of {} approvals{}{})",
        r.id,
        clean(&r.reason),
        r.conversation_id,
        r.from_seq,
        r.to_seq,
        clean(&r.tier),
        clean(&r.status),
        r.decisions.iter().filter(|d| d.approve).count(),
        r.required,
        if r.broad { ", broad" } else { "" },
        if r.second_review_overdue {
            ", SECOND REVIEW OVERDUE"
        } else {
            ""
        }
    );
}

/// The authenticator code: `CUSTODIA_TOTP_CODE` for scripts, else a prompt.
fn read_code() -> anyhow::Result<String> {
    if let Ok(code) = std::env::var("CUSTODIA_TOTP_CODE") {
        return Ok(code);
    }
    eprint!("one-time code: ");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the one-time code (or set CUSTODIA_TOTP_CODE)")?;
    Ok(line.trim().to_owned())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The last millisecond of the UTC day `date` (YYYY-MM-DD), as Unix ms.
/// The last millisecond of `date` (YYYY-MM-DD, UTC): an order holds through its last day.
fn end_of_day_ms(date: &str, flag: &'static str) -> anyhow::Result<i64> {
    let day = custodia_core::Day::parse(date, flag)
        .map_err(|_| anyhow::anyhow!("{flag} must be a date like 2027-01-31"))?;
    Ok(day.end().as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::term::tests::{nasty, one_safe_line};
    use proptest::prelude::*;

    proptest! {
        /// `staff case`, `staff cases` and `staff read` print any reporter's text, comment
        /// or message as one line, after the program's own mark.
        #[test]
        fn staff_lines_hold_any_text_on_one_line(text in nasty(), verified in any::<bool>()) {
            let e = wire::Evidence {
                seq: 2,
                sender_id: Uuid::nil(),
                sender_username: Some(text.clone()),
                sent_at_ms: 0,
                body: Some(text.clone()),
                verified,
            };
            let line = evidence_line(&e);
            prop_assert!(one_safe_line(&line), "{line:?}");
            let mark = if verified { "  #2 [verified: sent by " } else { "  #2 [UNVERIFIED] \"" };
            prop_assert!(line.starts_with(mark), "{line:?}");
            let m = Message {
                conversation_id: Uuid::nil(),
                seq: 1,
                id: Uuid::nil(),
                client_id: "c".into(),
                sender_id: Uuid::nil(),
                sent_at_ms: 0,
                state: MessageState::Ok,
                body: Some(text.clone()),
                franking_key: None,
            };
            let names = std::collections::BTreeMap::from([(Uuid::nil(), text.clone())]);
            prop_assert!(one_safe_line(&read_line(&m, &names)));
            prop_assert!(one_safe_line(&read_line(&m, &Default::default())));
            prop_assert!(one_safe_line(&quoted(&text)));
            let k = wire::Case {
                id: Uuid::nil(),
                kind: text.clone(),
                conversation_id: Uuid::nil(),
                reporter: None,
                category: Some(text.clone()),
                comment: Some(text.clone()),
                reported: vec![2],
                evidence: vec![e],
                from_seq: 1,
                to_seq: 2,
                reference: None,
                opened_at_ms: 0,
                nondisclosure_until_ms: None,
                priority: text.clone(),
                files: Vec::new(),
            };
            prop_assert!(one_safe_line(&case_line(&k)));
        }
    }

    #[test]
    fn an_order_date_holds_through_that_utc_day() {
        // 2027-01-31 23:59:59.999 UTC.
        assert_eq!(
            super::end_of_day_ms("2027-01-31", "--until").unwrap(),
            1_801_439_999_999
        );
        assert!(super::end_of_day_ms("31/01/2027", "--until").is_err());
    }
}
