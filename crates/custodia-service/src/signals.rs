//! Text rules: configurable keywords and patterns, each with a category and a score,
//! evaluated on every message at ingest. A message whose score reaches the threshold is
//! handed to the [`Signals`] seam, which opens a case — no human reads anything without a
//! grant. The rules see the plaintext only in memory, as the sealing does.
//!
//! The rule file (TOML):
//!
//! ```toml
//! threshold = 10
//! [[rules]]
//! name = "secrecy"
//! category = "grooming"
//! pattern = "(?i)don'?t tell your (mum|mom|dad|parents)"
//! score = 10
//! [[rules]]
//! name = "crypto-spam"
//! category = "spam"
//! keywords = ["free crypto", "double your bitcoin"]
//! score = 5
//! ```
//!
//! A rule may say `priority = "high"` or `"normal"` for the cases it opens; by default
//! child-safety and grooming rules are high, the rest normal.

use async_trait::async_trait;
use custodia_core::{CasePriority, ReportCategory};
use regex::RegexSet;
use serde::Deserialize;

use crate::MessageView;

/// A message that reached the threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    /// The matching rules' names.
    pub rules: Vec<String>,
    /// The category of the highest-scoring rule.
    pub category: ReportCategory,
    /// The summed score.
    pub score: u32,
    /// The case's priority: `high` if any matching rule is.
    pub priority: CasePriority,
}

/// A rule's priority when its file gives none: child-safety rules are `high`.
pub(crate) fn default_priority(category: ReportCategory) -> CasePriority {
    match category {
        ReportCategory::ChildSafety | ReportCategory::Grooming => CasePriority::High,
        _ => CasePriority::Normal,
    }
}

/// Where signals go (the governance service opens cases).
#[async_trait]
pub trait Signals: Send + Sync {
    /// `message` (already stored and acknowledged) matched the text rules: open its case.
    /// Called until it succeeds (the signal waits in the outbox meanwhile), so it must be
    /// idempotent: a second call for the same message must not open a second case.
    async fn flagged(&self, message: MessageView, signal: Signal) -> crate::ServiceResult<()>;
    /// An upload matched a hash list; it is kept, sealed, as evidence.
    async fn file_matched(&self, matched: crate::HashMatch);
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    threshold: u32,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    category: String,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    keywords: Vec<String>,
    score: u32,
    #[serde(default)]
    priority: Option<String>,
}

struct Rule {
    name: String,
    category: ReportCategory,
    score: u32,
    priority: CasePriority,
}

/// Compiled text rules.
pub struct TextRules {
    set: RegexSet,
    rules: Vec<Rule>,
    threshold: u32,
}

impl std::fmt::Debug for TextRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextRules")
            .field("rules", &self.rules.len())
            .field("threshold", &self.threshold)
            .finish()
    }
}

impl TextRules {
    /// Parses and compiles a rule file; the error says which rule is wrong and why.
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: RawRules = toml::from_str(text).map_err(|e| format!("text rules: {e}"))?;
        if raw.threshold == 0 {
            return Err("text rules: threshold must be at least 1".into());
        }
        let mut patterns = Vec::with_capacity(raw.rules.len());
        let mut rules = Vec::with_capacity(raw.rules.len());
        for r in raw.rules {
            let category = ReportCategory::parse(&r.category)
                .map_err(|e| format!("text rule {:?}: {e}", r.name))?;
            let pattern = match (r.pattern, r.keywords.is_empty()) {
                (Some(p), true) => p,
                (None, false) => {
                    let words: Vec<String> = r.keywords.iter().map(|k| regex::escape(k)).collect();
                    format!(r"(?i)\b(?:{})\b", words.join("|"))
                }
                _ => {
                    return Err(format!(
                        "text rule {:?}: give either a pattern or keywords",
                        r.name
                    ));
                }
            };
            regex::Regex::new(&pattern)
                .map_err(|e| format!("text rule {:?}: bad pattern: {e}", r.name))?;
            patterns.push(pattern);
            let priority = match r.priority.as_deref() {
                None => default_priority(category),
                Some(p) => {
                    CasePriority::parse(p).map_err(|e| format!("text rule {:?}: {e}", r.name))?
                }
            };
            rules.push(Rule {
                name: r.name,
                category,
                score: r.score,
                priority,
            });
        }
        let set = RegexSet::new(&patterns).map_err(|e| format!("text rules: {e}"))?;
        Ok(Self {
            set,
            rules,
            threshold: raw.threshold,
        })
    }

    /// The signal for `text`, if its matching rules reach the threshold.
    pub fn evaluate(&self, text: &str) -> Option<Signal> {
        let hits: Vec<&Rule> = self
            .set
            .matches(text)
            .into_iter()
            .map(|i| &self.rules[i])
            .collect();
        let score: u32 = hits.iter().map(|r| r.score).sum();
        if score < self.threshold {
            return None;
        }
        let top = hits.iter().max_by_key(|r| r.score)?;
        Some(Signal {
            rules: hits.iter().map(|r| r.name.clone()).collect(),
            category: top.category,
            score,
            priority: hits.iter().map(|r| r.priority).min()?,
        })
    }

    /// The priority of a signal by `rules` (names) of `category`, as the rules say now
    /// (a name no rule has any more: by its category).
    pub fn priority_of(&self, rules: &[String], category: ReportCategory) -> CasePriority {
        rules
            .iter()
            .map(|name| {
                self.rules
                    .iter()
                    .find(|r| &r.name == name)
                    .map_or(default_priority(category), |r| r.priority)
            })
            .min()
            .unwrap_or(default_priority(category))
    }
}

/// Signals read from the outbox per round.
const OUTBOX_BATCH: u32 = 64;
/// How long the worker waits before retrying a signal whose case could not be opened.
const OUTBOX_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

impl crate::Service {
    /// Opens the cases of the signals waiting in the outbox, oldest first, and removes each
    /// once its case exists. Stops at the first that fails (it stays, to be retried).
    /// Returns how many were handled.
    pub async fn drain_signals(&self) -> crate::ServiceResult<usize> {
        let inner = &self.inner;
        let Some(sink) = inner.signals.clone() else {
            return Ok(0);
        };
        let mut handled = 0;
        loop {
            let pending = inner.store.messages.pending_signals(OUTBOX_BATCH).await?;
            if pending.is_empty() {
                return Ok(handled);
            }
            for p in pending {
                let message = inner
                    .store
                    .messages
                    .message(p.conversation_id, p.seq)
                    .await?;
                if let Some(m) = message {
                    let view = crate::metadata_of(&m);
                    let priority = inner
                        .text_rules
                        .as_ref()
                        .map_or(default_priority(p.signal.category), |r| {
                            r.priority_of(&p.signal.rules, p.signal.category)
                        });
                    let signal = Signal {
                        rules: p.signal.rules.clone(),
                        category: p.signal.category,
                        score: p.signal.score,
                        priority,
                    };
                    sink.flagged(view, signal).await?;
                }
                inner
                    .store
                    .messages
                    .signal_handled(p.conversation_id, p.seq)
                    .await?;
                handled += 1;
            }
        }
    }

    /// Runs [`Service::drain_signals`] at start, after every send that stored a signal,
    /// and every few seconds while any could not be handled, until `stop` resolves.
    pub fn spawn_signal_worker(
        &self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            tokio::pin!(stop);
            loop {
                let retry = match service.drain_signals().await {
                    Ok(_) => false,
                    Err(e) => {
                        tracing::error!(error = %e, "a text-rule signal could not open its case yet; retrying");
                        true
                    }
                };
                tokio::select! {
                    () = &mut stop => return,
                    () = service.inner.signal_wakeup.notified() => {}
                    () = tokio::time::sleep(OUTBOX_RETRY), if retry => {}
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"
threshold = 10
[[rules]]
name = "secrecy"
category = "grooming"
pattern = "(?i)don'?t tell your (mum|mom|dad|parents)"
score = 10
[[rules]]
name = "crypto"
category = "spam"
keywords = ["free crypto", "double your bitcoin"]
score = 5
"#;

    #[test]
    fn scores_add_up_to_the_threshold() {
        let r = TextRules::parse(RULES).unwrap();
        let s = r.evaluate("Don't tell your parents about us").unwrap();
        assert_eq!((s.category, s.score), (ReportCategory::Grooming, 10));
        assert_eq!(r.evaluate("FREE CRYPTO here"), None, "5 < 10");
        assert_eq!(
            r.evaluate("free crypto! double your bitcoin!"),
            None,
            "a rule counts once however often it matches"
        );
        let both = r.evaluate("free crypto, but don't tell your mum").unwrap();
        assert_eq!((both.category, both.score), (ReportCategory::Grooming, 15));
        assert_eq!(both.rules.len(), 2);
        assert_eq!(r.evaluate("freecrypto"), None, "keywords match whole words");
        assert_eq!(r.evaluate("hello"), None);
    }

    #[test]
    fn child_safety_rules_open_high_cases_unless_a_rule_says_otherwise() {
        let r = TextRules::parse(RULES).unwrap();
        let grooming = r.evaluate("don't tell your dad").unwrap();
        assert_eq!(
            grooming.priority,
            CasePriority::High,
            "grooming: high by default"
        );
        let spam = TextRules::parse(&RULES.replace("threshold = 10", "threshold = 5"))
            .unwrap()
            .evaluate("free crypto")
            .unwrap();
        assert_eq!(spam.priority, CasePriority::Normal);
        let configured = TextRules::parse(&format!(
            "{}\n[[rules]]\nname = \"scam\"\ncategory = \"spam\"\nkeywords = [\"gift card\"]\nscore = 10\npriority = \"high\"\n",
            RULES.replace("score = 10\n[[rules]]", "score = 10\npriority = \"normal\"\n[[rules]]")
        ))
        .unwrap();
        assert_eq!(
            configured.evaluate("don't tell your mum").unwrap().priority,
            CasePriority::Normal,
            "a rule may say normal"
        );
        let both = configured
            .evaluate("a gift card, don't tell your mum")
            .unwrap();
        assert_eq!(both.priority, CasePriority::High, "high if any rule is");
        // From the outbox: by the rules' names as the file says now.
        assert_eq!(
            configured.priority_of(&["scam".into()], ReportCategory::Spam),
            CasePriority::High
        );
        assert_eq!(
            configured.priority_of(&["gone".into()], ReportCategory::ChildSafety),
            CasePriority::High,
            "a rule no longer in the file: by its category"
        );
    }

    #[test]
    fn bad_rule_files_say_what_is_wrong() {
        for (text, says) in [
            ("threshold = 0", "threshold"),
            (
                "threshold = 1\n[[rules]]\nname = \"x\"\ncategory = \"nope\"\npattern = \"a\"\nscore = 1",
                "category",
            ),
            (
                "threshold = 1\n[[rules]]\nname = \"x\"\ncategory = \"spam\"\npattern = \"(\"\nscore = 1",
                "bad pattern",
            ),
            (
                "threshold = 1\n[[rules]]\nname = \"x\"\ncategory = \"spam\"\nscore = 1",
                "pattern or keywords",
            ),
            ("threshold = 1\nunknown = 2", "unknown"),
            (
                "threshold = 1\n[[rules]]\nname = \"x\"\ncategory = \"spam\"\npattern = \"a\"\nscore = 1\npriority = \"urgent\"",
                "priority",
            ),
        ] {
            let e = TextRules::parse(text).unwrap_err();
            assert!(e.contains(says), "{e} / {says}");
        }
    }
}
