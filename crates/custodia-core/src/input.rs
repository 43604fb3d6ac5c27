//! Checked user input. Raw strings become these types once, at the edge; code after that
//! relies on their invariants.

use std::fmt;

use time::{Date, Month};

/// The most bytes a text message body may have (16 KiB).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Why a piece of input was refused. Every message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The value does not have the expected shape.
    #[error("{field} is malformed: expected {hint}")]
    Malformed {
        /// Which field.
        field: &'static str,
        /// What it should look like.
        hint: &'static str,
    },
    /// The value is too long.
    #[error("{field} is too long: at most {max} {unit}")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// The limit.
        max: usize,
        /// What is counted.
        unit: &'static str,
    },
    /// The value is too short or empty.
    #[error("{field} is too short: at least {min} {unit}")]
    TooShort {
        /// Which field.
        field: &'static str,
        /// The limit.
        min: usize,
        /// What is counted.
        unit: &'static str,
    },
}

/// A username: 3–32 characters of `a-z`, `0-9`, `_`, `.`, `-`, starting with a letter or
/// digit; compared and stored in lower case.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Username(String);

impl Username {
    /// Checks and normalises a username.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let s = raw.trim().to_ascii_lowercase();
        if s.len() < 3 {
            return Err(ValidationError::TooShort {
                field: "username",
                min: 3,
                unit: "characters",
            });
        }
        if s.len() > 32 {
            return Err(ValidationError::TooLong {
                field: "username",
                max: 32,
                unit: "characters",
            });
        }
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c);
        let first_ok = s.starts_with(|c: char| c.is_ascii_alphanumeric());
        if !first_ok || !s.chars().all(ok_char) {
            return Err(ValidationError::Malformed {
                field: "username",
                hint: "letters, digits, '_', '.' or '-', starting with a letter or digit",
            });
        }
        Ok(Self(s))
    }
    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A country or jurisdiction as an ISO 3166-1 alpha-2 code (`US`, `DE`, …): two letters,
/// stored in upper case. The shape is checked, not membership of the ISO list.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Country([u8; 2]);

impl Country {
    /// Checks and normalises a country code.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw.trim().as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Ok(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => Err(ValidationError::Malformed {
                field: "country",
                hint: "an ISO 3166-1 alpha-2 code such as US or DE",
            }),
        }
    }

    /// The code, e.g. `US`.
    pub fn as_str(&self) -> &str {
        // Two ASCII letters, checked in `parse`.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A password as typed: 8–1024 bytes. Wiped from memory on drop; never printed.
pub struct Password(zeroize::Zeroizing<String>);

impl Password {
    /// Checks the length of a password.
    pub fn parse(raw: String) -> Result<Self, ValidationError> {
        let raw = zeroize::Zeroizing::new(raw);
        if raw.chars().count() < 8 {
            return Err(ValidationError::TooShort {
                field: "password",
                min: 8,
                unit: "characters",
            });
        }
        if raw.len() > 1024 {
            return Err(ValidationError::TooLong {
                field: "password",
                max: 1024,
                unit: "bytes",
            });
        }
        Ok(Self(raw))
    }
    /// The password bytes, for hashing.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A date of birth, `YYYY-MM-DD`, not in the future and not before 1900.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BirthDate(Date);

/// A calendar day in UTC, as `YYYY-MM-DD` (a period's first or last day, an order's
/// last day).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Day(Date);

impl Day {
    /// Parses `YYYY-MM-DD`; `field` names the input in the error.
    pub fn parse(raw: &str, field: &'static str) -> Result<Self, ValidationError> {
        calendar_date(raw, field, "a date as YYYY-MM-DD").map(Self)
    }

    /// The day of `t` (UTC).
    pub fn of(t: crate::Timestamp) -> Self {
        let date = time::OffsetDateTime::from_unix_timestamp(t.as_millis().div_euclid(1000))
            .map_or(time::Date::MIN, |t| t.date());
        Self(date)
    }

    /// Its first millisecond.
    pub fn start(&self) -> crate::Timestamp {
        crate::Timestamp::from_millis(self.0.midnight().assume_utc().unix_timestamp() * 1000)
    }

    /// Its last millisecond.
    pub fn end(&self) -> crate::Timestamp {
        crate::Timestamp::from_millis(self.start().as_millis() + 86_400_000 - 1)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}",
            self.0.year(),
            u8::from(self.0.month()),
            self.0.day()
        )
    }
}

/// Reads `YYYY-MM-DD` strictly (four, two and two digits, a real date).
fn calendar_date(
    raw: &str,
    field: &'static str,
    hint: &'static str,
) -> Result<Date, ValidationError> {
    let bad = ValidationError::Malformed { field, hint };
    let mut parts = raw.trim().splitn(3, '-');
    let mut num = |len: usize| {
        parts
            .next()
            .filter(|p| p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<u16>().ok())
    };
    let (Some(y), Some(m), Some(d)) = (num(4), num(2), num(2)) else {
        return Err(bad);
    };
    let month = u8::try_from(m)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or(bad.clone())?;
    let day = u8::try_from(d).map_err(|_| bad.clone())?;
    Date::from_calendar_date(i32::from(y), month, day).map_err(|_| bad)
}

impl BirthDate {
    /// Parses `YYYY-MM-DD` and checks it against `today`.
    pub fn parse(raw: &str, today: Date) -> Result<Self, ValidationError> {
        let date = calendar_date(
            raw,
            "date_of_birth",
            "a date from 1900-01-01 to today, as YYYY-MM-DD",
        )?;
        if date > today {
            return Err(ValidationError::Malformed {
                field: "date_of_birth",
                hint: "a date of birth that is not in the future (YYYY-MM-DD, up to today)",
            });
        }
        if date.year() < 1900 {
            return Err(ValidationError::Malformed {
                field: "date_of_birth",
                hint: "a date of birth from 1900-01-01 on (YYYY-MM-DD)",
            });
        }
        Ok(Self(date))
    }
    /// Wraps a date read back from storage.
    pub const fn from_date(d: Date) -> Self {
        Self(d)
    }
    /// The date.
    pub const fn date(&self) -> Date {
        self.0
    }
    /// Full years of age on `today`.
    pub fn age_on(&self, today: Date) -> i32 {
        let mut age = today.year() - self.0.year();
        if (today.month() as u8, today.day()) < (self.0.month() as u8, self.0.day()) {
            age -= 1;
        }
        age
    }
}

impl fmt::Display for BirthDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        write!(f, "{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
    }
}

/// A client-chosen message id that makes sends idempotent: 1–64 printable ASCII
/// characters, unique per sender and conversation.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ClientMsgId(String);

impl ClientMsgId {
    /// Checks a client message id.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.is_empty() {
            return Err(ValidationError::TooShort {
                field: "client_id",
                min: 1,
                unit: "character",
            });
        }
        if raw.len() > 64 {
            return Err(ValidationError::TooLong {
                field: "client_id",
                max: 64,
                unit: "characters",
            });
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ValidationError::Malformed {
                field: "client_id",
                hint: "printable ASCII without spaces (e.g. a UUID)",
            });
        }
        Ok(Self(raw.to_owned()))
    }
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The text of a message: valid UTF-8 (guaranteed by `String`), non-empty, at most
/// [`MAX_BODY_BYTES`]. Its `Debug` never shows the text.
#[derive(Clone, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    /// Checks a message body.
    pub fn parse(raw: String) -> Result<Self, ValidationError> {
        if raw.is_empty() {
            return Err(ValidationError::TooShort {
                field: "body",
                min: 1,
                unit: "byte",
            });
        }
        if raw.len() > MAX_BODY_BYTES {
            return Err(ValidationError::TooLong {
                field: "body",
                max: MAX_BODY_BYTES,
                unit: "bytes",
            });
        }
        Ok(Self(raw))
    }
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for MessageBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageBody(<{} bytes>)", self.0.len())
    }
}

/// A group title: 1–128 characters, no control characters.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GroupTitle(String);

impl GroupTitle {
    /// Checks a title.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(ValidationError::TooShort {
                field: "title",
                min: 1,
                unit: "character",
            });
        }
        if s.chars().count() > 128 {
            return Err(ValidationError::TooLong {
                field: "title",
                max: 128,
                unit: "characters",
            });
        }
        if s.chars().any(char::is_control) {
            return Err(ValidationError::Malformed {
                field: "title",
                hint: "text without control characters",
            });
        }
        Ok(Self(s.to_owned()))
    }
    /// The title.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Direct conversation (exactly two members) or group.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum ConversationKind {
    /// Two people.
    Direct,
    /// A titled group of up to the configured maximum.
    Group,
}

impl ConversationKind {
    /// Stable name for storage and the wire.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Group => "group",
        }
    }
    /// Parses [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "direct" => Some(Self::Direct),
            "group" => Some(Self::Group),
            _ => None,
        }
    }
}

/// A member's role in a conversation.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
#[non_exhaustive]
pub enum MemberRole {
    /// An ordinary member.
    Member,
    /// May add and remove members.
    Admin,
    /// Created the group; may add and remove members and admins.
    Owner,
}

impl MemberRole {
    /// Stable name for storage and the wire.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }
    /// Parses [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "member" => Some(Self::Member),
            "admin" => Some(Self::Admin),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }
    /// Whether this role may add and remove members.
    pub const fn manages_members(&self) -> bool {
        matches!(self, Self::Admin | Self::Owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn usernames() {
        assert_eq!(Username::parse(" Alice ").unwrap().as_str(), "alice");
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("_alice").is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse(&"a".repeat(33)).is_err());
    }

    #[test]
    fn birth_dates() {
        let today = date!(2026 - 11 - 23);
        let d = BirthDate::parse("2010-11-24", today).unwrap();
        assert_eq!(d.age_on(today), 15);
        assert_eq!(
            BirthDate::parse("2010-11-23", today).unwrap().age_on(today),
            16
        );
        for bad in [
            "2027-01-01",
            "1899-12-31",
            "2010-02-30",
            "2010-1-01",
            "20100101",
            "x",
        ] {
            assert!(BirthDate::parse(bad, today).is_err(), "{bad}");
        }
        // Each refusal says the accepted range, not just "a past date".
        for (bad, says) in [
            ("1800-05-01", "from 1900-01-01"),
            ("2027-01-01", "not in the future"),
            ("2010-02-30", "1900-01-01 to today"),
        ] {
            let e = BirthDate::parse(bad, today).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn bodies_and_ids() {
        assert!(MessageBody::parse(String::new()).is_err());
        assert!(MessageBody::parse("x".repeat(MAX_BODY_BYTES)).is_ok());
        assert!(MessageBody::parse("x".repeat(MAX_BODY_BYTES + 1)).is_err());
        assert!(!format!("{:?}", MessageBody::parse("secret".into()).unwrap()).contains("secret"));
        assert!(ClientMsgId::parse("a b").is_err());
        assert!(ClientMsgId::parse(&"a".repeat(65)).is_err());
    }
}
