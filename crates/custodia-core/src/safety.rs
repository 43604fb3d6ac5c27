//! Teen protections, as large platforms apply them: from the date of birth, an age band;
//! from the band and the member's choice, who may message them.
//!
//! | age | may register | direct messages and groups | "who can message me" |
//! |---|---|---|---|
//! | under 13 | no | — | — |
//! | 13–15 | yes | none at all | — |
//! | 16–17 | yes | yes | connections (default) or nobody; never everyone |
//! | 18+ | yes | yes | everyone (default), connections or nobody |
//!
//! An adult can never start a conversation with, or add to a group, a minor who is not
//! their connection.

use crate::BirthDate;

named_enum!(
    /// Who may start a conversation with a member or add them to a group.
    WhoCanMessage, "who_can_message" {
        /// Anyone (adults only).
        Everyone => "everyone",
        /// Only mutual connections.
        Connections => "connections",
        /// Nobody new.
        Nobody => "nobody",
    }
);

/// A member's age band, which decides what they may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AgeBand {
    /// Under 13: cannot register.
    Child,
    /// 13–15: no direct messages or groups.
    YoungTeen,
    /// 16–17: connections only.
    OlderTeen,
    /// 18 and over.
    Adult,
}

impl AgeBand {
    /// The band of someone born on `birth` as of `today`.
    pub fn of(birth: &BirthDate, today: time::Date) -> Self {
        match birth.age_on(today) {
            ..13 => Self::Child,
            13..16 => Self::YoungTeen,
            16..18 => Self::OlderTeen,
            _ => Self::Adult,
        }
    }

    /// Under 18.
    pub fn is_minor(self) -> bool {
        self < Self::Adult
    }

    /// Whether direct messages and groups are open to this band at all.
    pub fn may_converse(self) -> bool {
        self >= Self::OlderTeen
    }

    /// The effective setting for a member of this band who chose `chosen` (or nothing).
    pub fn who_can_message(self, chosen: Option<WhoCanMessage>) -> WhoCanMessage {
        match (self, chosen) {
            (Self::Child | Self::YoungTeen, _) => WhoCanMessage::Nobody,
            (Self::OlderTeen, Some(WhoCanMessage::Nobody)) => WhoCanMessage::Nobody,
            (Self::OlderTeen, _) => WhoCanMessage::Connections,
            (Self::Adult, Some(c)) => c,
            (Self::Adult, None) => WhoCanMessage::Everyone,
        }
    }

    /// Whether a member of this band may choose `setting`.
    pub fn may_choose(self, setting: WhoCanMessage) -> bool {
        match self {
            Self::Adult => true,
            Self::OlderTeen => setting != WhoCanMessage::Everyone,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn bands_follow_birthdays_exactly() {
        let today = date!(2026 - 11 - 24);
        let band = |d| AgeBand::of(&BirthDate::parse(d, today).unwrap(), today);
        assert_eq!(band("2013-11-25"), AgeBand::Child, "13 tomorrow");
        assert_eq!(band("2013-11-24"), AgeBand::YoungTeen, "13 today");
        assert_eq!(band("2010-11-24"), AgeBand::OlderTeen);
        assert_eq!(band("2008-11-25"), AgeBand::OlderTeen, "18 tomorrow");
        assert_eq!(band("2008-11-24"), AgeBand::Adult);
    }

    #[test]
    fn older_teens_are_connections_only_and_cannot_choose_everyone() {
        let t = AgeBand::OlderTeen;
        assert_eq!(t.who_can_message(None), WhoCanMessage::Connections);
        assert_eq!(
            t.who_can_message(Some(WhoCanMessage::Everyone)),
            WhoCanMessage::Connections
        );
        assert!(!t.may_choose(WhoCanMessage::Everyone));
        assert!(t.may_choose(WhoCanMessage::Nobody));
        assert_eq!(
            AgeBand::YoungTeen.who_can_message(Some(WhoCanMessage::Everyone)),
            WhoCanMessage::Nobody
        );
        assert_eq!(
            AgeBand::Adult.who_can_message(None),
            WhoCanMessage::Everyone
        );
    }
}
