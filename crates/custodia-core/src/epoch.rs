//! Key epochs: each conversation gets one data key per time bucket.

use std::fmt;
use std::str::FromStr;

use crate::{Timestamp, ValidationError};

/// How time is cut into epochs. Changing it later is safe: epoch labels of different
/// schemes never collide, so old keys stay addressable.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub enum EpochScheme {
    /// One epoch per UTC calendar month (the default).
    #[default]
    Month,
    /// One epoch per UTC day.
    Day,
}

impl EpochScheme {
    /// The epoch that contains `at`.
    pub fn epoch_of(&self, at: Timestamp) -> Epoch {
        let dt = at.to_datetime();
        let (y, m, d) = (dt.year(), u8::from(dt.month()), dt.day());
        Epoch(match self {
            Self::Month => format!("m{y:04}-{m:02}"),
            Self::Day => format!("d{y:04}-{m:02}-{d:02}"),
        })
    }
}

impl FromStr for EpochScheme {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "month" => Ok(Self::Month),
            "day" => Ok(Self::Day),
            _ => Err(ValidationError::Malformed {
                field: "epoch",
                hint: "\"month\" or \"day\"",
            }),
        }
    }
}

/// The label of one epoch, e.g. `m2026-11` or `d2026-11-23`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Epoch(String);

impl Epoch {
    /// Wraps a label read back from storage.
    pub fn from_label(label: String) -> Self {
        Self(label)
    }
    /// The label.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_and_day_labels() {
        // 2026-11-23T12:00:00Z
        let t = Timestamp::from_millis(1_795_435_200_000);
        assert_eq!(EpochScheme::Month.epoch_of(t).as_str(), "m2026-11");
        assert_eq!(EpochScheme::Day.epoch_of(t).as_str(), "d2026-11-23");
    }

    #[test]
    fn month_boundary() {
        // 2026-11-30T23:59:59.999Z and one millisecond later
        let last = Timestamp::from_millis(1_796_083_199_999);
        assert_eq!(EpochScheme::Month.epoch_of(last).as_str(), "m2026-11");
        let first = Timestamp::from_millis(1_796_083_200_000);
        assert_eq!(EpochScheme::Month.epoch_of(first).as_str(), "m2026-12");
    }
}
