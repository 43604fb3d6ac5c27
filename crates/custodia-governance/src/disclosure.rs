//! Disclosure packages: the one way data leaves under legal process. Built by a legal
//! officer from an accepted legal request whose production grants were approved: the
//! build *is* the read (each grant read through the audited path, logged before anything
//! is opened), then the records, the custodian's certificate and the log receipts are
//! signed with the package key and encrypted to the agency (see `custodia-disclosure`).
//! The build and the hand-over are each logged.

use std::collections::HashMap;

use custodia_audit::{AuditEvent, EventKind, Receipt};
use custodia_core::{DataCategory, LegalRequestId, RequestStatus, UserId};
use custodia_disclosure as pkg;
use custodia_service::{Content, ServiceError, ServiceResult};
use sha2::Digest;

use crate::{Governance, RequestView, StaffPrincipal};

/// A built disclosure package, encrypted to its recipient.
pub struct Package {
    /// The legal request's reference (the file's natural name).
    pub reference: String,
    /// The age-encrypted package.
    pub bytes: Vec<u8>,
    /// Messages in it.
    pub messages: usize,
}

impl std::fmt::Debug for Package {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Package")
            .field("reference", &self.reference)
            .field("bytes", &self.bytes.len())
            .field("messages", &self.messages)
            .finish()
    }
}

/// What the custodian certifies.
const STATEMENT: &str = "I am a custodian of records of this deployment, or otherwise qualified \
    by my position, and I certify that the records in this package are true copies of records \
    that were made at or near the time of the acts and events they set forth, by or from \
    information transmitted by a person with knowledge of those matters (the messages are as \
    the platform received them, each with the franking commitment stored when it was \
    received); that they were kept in the course of the platform's regularly conducted \
    activity; and that making them was a regular practice of that activity. The records were \
    copied by an electronic process that produces an accurate result: each file's SHA-256 is \
    in the signed manifest, each read that produced them is in the platform's witnessed \
    transparency log, and the receipts in this package prove it.";

const README: &str = "custodia disclosure package\n\
\n\
This archive is what the platform produced under the legal request named in\n\
manifest.json. Check it offline with:\n\
\n\
  custodia disclosure verify PACKAGE --package-key KEY --log-key KEY [--identity FILE]\n\
\n\
(the keys are the deployment's published package-signing and audit log keys). It checks\n\
the signature on the manifest, every file's SHA-256, every log receipt against the\n\
witnessed checkpoint, that the logged reads name exactly the produced messages, and that\n\
each message's text opens its franking commitment with the key beside it. A message's\n\
server tag is keyed by the platform: ask the platform to confirm it.\n";

impl Governance {
    /// Builds the disclosure package of legal request `id` for `recipient` (the agency's
    /// age X25519 key): reads every approved grant of its production (logged, as any
    /// read), gathers the subscriber records the acceptance allows, logs the build naming
    /// the records' hashes, proves every entry of the request's path against one witnessed
    /// checkpoint, signs, encrypts, and logs the hand-over. Legal officers only.
    pub async fn build_package(
        &self,
        by: &StaffPrincipal,
        id: LegalRequestId,
        recipient: &str,
    ) -> ServiceResult<Package> {
        let view = self.legal_request(by, id).await?;
        let age_recipient = pkg::recipient(recipient).map_err(|_| {
            ServiceError::Rejected(
                "the recipient is the agency's age public key (age1…, as age-keygen prints it)",
            )
        })?;
        let r = &view.record;
        let review = crate::legal::accepted_review(r)?;
        let (Some(intake), Some(reviewed)) = (r.received_log_index, review.log_index) else {
            return Err(ServiceError::Rejected(
                "this legal request was entered before its log entries were kept with it; enter it again to produce a package",
            ));
        };
        let inner = &self.inner;
        let accepted = &review.accepted;
        let tier = if accepted.contains(&DataCategory::Content) {
            Some("content")
        } else if accepted.contains(&DataCategory::Metadata) {
            Some("metadata")
        } else {
            None
        };
        let grants = match tier {
            Some(_) => self.production_grants(by, &view.reference).await?,
            None => Vec::new(),
        };

        // The reads: each logged before anything is opened, as every staff read.
        let mut usernames: HashMap<UserId, Option<String>> = HashMap::new();
        let mut conversations = Vec::new();
        let mut messages: Vec<pkg::MessageRecord> = Vec::new();
        let mut reads: Vec<Receipt> = Vec::new();
        for grant in &grants {
            let g = &grant.record;
            let read = self.audited_read(by, g.id, true).await?;
            if !conversations
                .iter()
                .any(|c: &pkg::ConversationRecord| c.id == g.conversation_id.to_string())
            {
                let mut members = Vec::new();
                for m in inner.store.conversations.members(g.conversation_id).await? {
                    usernames.insert(m.user_id, Some(m.username.to_string()));
                    members.push(pkg::MemberRecord {
                        account: m.user_id.to_string(),
                        username: Some(m.username.to_string()),
                        joined_at: m.joined_at.rfc3339(),
                    });
                }
                conversations.push(pkg::ConversationRecord {
                    id: g.conversation_id.to_string(),
                    members,
                });
            }
            for (m, franking) in read.messages.into_iter().zip(read.franking) {
                if let std::collections::hash_map::Entry::Vacant(e) = usernames.entry(m.sender_id) {
                    let user = inner.store.accounts.user_by_id(m.sender_id).await?;
                    e.insert(user.map(|u| u.username.to_string()));
                }
                let (content, text) = match &m.content {
                    Content::Text(t) => ("text", Some(t.as_str().to_owned())),
                    Content::Deleted => ("deleted", None),
                    Content::Withheld => ("metadata_only", None),
                    _ => ("unreadable", None),
                };
                messages.push(pkg::MessageRecord {
                    grant: g.id.to_string(),
                    conversation: m.conversation_id.to_string(),
                    seq: m.seq,
                    message_id: m.id.to_string(),
                    sender: m.sender_id.to_string(),
                    sender_username: usernames.get(&m.sender_id).cloned().flatten(),
                    sent_at: m.sent_at.rfc3339(),
                    content: content.into(),
                    franking: franking.map(|f| pkg::FrankingRecord {
                        commitment: pkg::hex(&f.commitment),
                        server_tag: pkg::hex(&f.tag),
                        key: m
                            .franking_key
                            .as_ref()
                            .filter(|_| text.is_some())
                            .map(|k| pkg::hex(k.as_bytes())),
                    }),
                    text,
                });
            }
            reads.push(read.receipt);
        }

        let produced_messages = messages.len();
        let mut files: Vec<(String, Vec<u8>)> = vec![(pkg::README.into(), README.into())];
        if let Some(tier) = tier {
            files.push((
                pkg::MESSAGES.into(),
                pkg::to_json(&pkg::MessageRecords {
                    legal_request: view.reference.clone(),
                    tier: tier.into(),
                    conversations,
                    messages,
                }),
            ));
        }
        if accepted.contains(&DataCategory::Subscriber) {
            let mut accounts = Vec::new();
            for t in &r.targets {
                let user = match t.account {
                    Some(a) => inner.store.accounts.user_by_id(a).await?,
                    None => None,
                };
                accounts.push(pkg::SubscriberRecord {
                    given: t.given.clone(),
                    found: user.is_some(),
                    account: user.as_ref().map(|u| u.id.to_string()),
                    username: user.as_ref().map(|u| u.username.to_string()),
                    birth_date: user.as_ref().map(|u| u.birth_date.to_string()),
                    created_at: user.as_ref().map(|u| u.created_at.rfc3339()),
                });
            }
            files.push((
                pkg::SUBSCRIBERS.into(),
                pkg::to_json(&pkg::SubscriberRecords {
                    legal_request: view.reference.clone(),
                    accounts,
                }),
            ));
        }
        let now = inner.clock.now();
        let deployment = inner.audit.verifier().name().to_owned();
        files.push((
            pkg::CERTIFICATE.into(),
            pkg::to_json(&pkg::Certificate {
                legal_request: view.reference.clone(),
                deployment,
                custodian: pkg::Custodian {
                    name: by.username.to_string(),
                    staff_id: by.staff_id.to_string(),
                    role: by.role.as_str().into(),
                },
                statement: STATEMENT.into(),
                date: now.rfc3339(),
                records: files
                    .iter()
                    .filter(|(p, _)| p.starts_with("records/"))
                    .map(|(p, _)| p.clone())
                    .collect(),
            }),
        ));

        // The build, logged naming the records, before anything is signed or handed over.
        let build = self
            .append(AuditEvent {
                kind: EventKind::DisclosureBuilt,
                time: now,
                actor: Some(by.actor()),
                reason: None,
                case: Some(id.to_string()),
                subjects: Vec::new(),
                scope: vec![
                    (
                        "grants".into(),
                        grants
                            .iter()
                            .map(|g| g.record.id.to_string())
                            .collect::<Vec<_>>()
                            .join(" "),
                    ),
                    ("records".into(), pkg::records_scope(&files)),
                ],
            })
            .await?;

        // Every entry of the path, proven against the build's witnessed checkpoint.
        let checkpoint = build.checkpoint.clone();
        let mut path: Vec<(&str, u64)> = vec![("intake", intake), ("review", reviewed)];
        for g in &grants {
            path.extend(g.record.decisions.iter().map(|d| ("decision", d.log_index)));
        }
        path.extend(reads.iter().map(|read| ("read", read.index)));
        let mut receipts = Vec::with_capacity(path.len() + 1);
        for (what, index) in path {
            let receipt = inner
                .audit
                .receipt_against(index, &checkpoint)
                .await
                .map_err(|e| ServiceError::Unavailable(format!("audit log: {e}")))?;
            receipts.push(receipt_record(what, &receipt));
        }
        receipts.push(receipt_record("build", &build));
        files.push((
            pkg::RECEIPTS.into(),
            pkg::to_json(&pkg::Receipts {
                checkpoint,
                entries: receipts,
            }),
        ));

        let manifest = pkg::to_json(&pkg::manifest(
            &view.reference,
            &id.to_string(),
            &now.rfc3339(),
            &files,
        ));
        let signature = inner
            .keys
            .sign_package(&pkg::signed_text(&view.reference, &manifest))?;
        let mtime = u64::try_from(now.as_millis() / 1000).unwrap_or(0);
        let archive = pkg::archive(&files, &manifest, &signature, mtime);
        drop(files);
        let bytes = pkg::encrypt(&age_recipient, &archive);
        drop(archive);

        // The hand-over, logged before the package leaves.
        self.append(AuditEvent {
            kind: EventKind::DisclosureDelivered,
            time: inner.clock.now(),
            actor: Some(by.actor()),
            reason: None,
            case: Some(id.to_string()),
            subjects: Vec::new(),
            scope: vec![
                ("build".into(), build.index.to_string()),
                (
                    "package_sha256".into(),
                    pkg::hex(&sha2::Sha256::digest(&bytes)),
                ),
                ("recipient".into(), age_recipient.to_string()),
            ],
        })
        .await?;
        tracing::info!(legal_request = %id, messages = produced_messages, bytes = bytes.len(), "disclosure package built and handed over");
        Ok(Package {
            reference: view.reference,
            bytes,
            messages: produced_messages,
        })
    }

    /// The approved grants of the production of legal request `reference` that `by` made
    /// (refused while any is still pending).
    async fn production_grants(
        &self,
        by: &StaffPrincipal,
        reference: &str,
    ) -> ServiceResult<Vec<RequestView>> {
        let inner = &self.inner;
        let cases: Vec<_> = inner
            .store
            .cases
            .cases()
            .await?
            .into_iter()
            .filter(|c| c.reference.as_deref() == Some(reference))
            .collect();
        if cases.is_empty() {
            return Err(ServiceError::Rejected(
                "produce the legal request first (its access requests then need their approvals)",
            ));
        }
        let mut grants = Vec::new();
        let mut pending = false;
        for case in &cases {
            for request in inner.store.cases.requests_of_case(case.id).await? {
                let view = self.view(request);
                match view.status {
                    RequestStatus::Approved | RequestStatus::Active
                        if view.record.requester == by.staff_id =>
                    {
                        grants.push(view)
                    }
                    RequestStatus::Pending => pending = true,
                    _ => {}
                }
            }
        }
        if pending {
            return Err(ServiceError::Rejected(
                "some of the production's access requests still wait for their approvals; the package is built once all are decided",
            ));
        }
        if grants.is_empty() {
            return Err(ServiceError::Rejected(
                "none of the production's access requests is an open grant of yours: nothing can be read for the package",
            ));
        }
        grants.sort_by_key(|g| (g.record.conversation_id, g.record.seqs.0));
        Ok(grants)
    }
}

fn receipt_record(what: &str, r: &Receipt) -> pkg::ReceiptRecord {
    use base64::Engine;
    pkg::ReceiptRecord {
        what: what.into(),
        index: r.index,
        leaf_hash: pkg::hex(&r.leaf_hash),
        entry: base64::engine::general_purpose::STANDARD.encode(&r.entry),
        proof: r.proof.iter().map(|h| pkg::hex(h)).collect(),
    }
}
