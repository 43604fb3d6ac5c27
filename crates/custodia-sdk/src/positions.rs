//! [`Positions`]: what a client holds of each conversation, so that a message is shown
//! once and the next sync asks for everything it lacks.

use std::collections::{BTreeSet, HashMap};

use uuid::Uuid;

/// Per conversation, the position up to which the client holds every message, and the
/// messages it holds beyond a gap. A sync from [`Positions::through`] asks for exactly
/// what is missing, never past a gap.
#[derive(Debug, Default, Clone)]
pub struct Positions {
    held: HashMap<Uuid, Held>,
}

#[derive(Debug, Default, Clone)]
struct Held {
    through: u64,
    beyond: BTreeSet<u64>,
}

impl Positions {
    /// The client holds everything of `conversation` up to `seq` (e.g. from its saved
    /// cursors, before a sync).
    pub fn hold_through(&mut self, conversation: Uuid, seq: u64) {
        let held = self.held.entry(conversation).or_default();
        held.through = held.through.max(seq);
        held.settle();
    }

    /// Records message `seq` of `conversation`: `true` if it is new, `false` if the client
    /// already holds it.
    pub fn receive(&mut self, conversation: Uuid, seq: u64) -> bool {
        let held = self.held.entry(conversation).or_default();
        if seq <= held.through || !held.beyond.insert(seq) {
            return false;
        }
        held.settle();
        true
    }

    /// Per conversation, the position up to which every message is held: what to sync
    /// from.
    pub fn through(&self) -> HashMap<Uuid, u64> {
        self.held.iter().map(|(k, h)| (*k, h.through)).collect()
    }
}

impl Held {
    /// Moves `through` over the messages held right after it.
    fn settle(&mut self) {
        while let Some(&next) = self.beyond.first() {
            if next > self.through + 1 {
                break;
            }
            self.beyond.pop_first();
            self.through = self.through.max(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever order and repetition messages arrive in, each is new exactly once,
        /// and the sync position is the longest run held from the start.
        #[test]
        fn each_message_is_new_once_and_the_position_never_passes_a_gap(
            arrivals in proptest::collection::vec(1u64..60, 0..200),
            start in 0u64..5,
        ) {
            let c = Uuid::nil();
            let mut p = Positions::default();
            p.hold_through(c, start);
            let mut new = BTreeSet::new();
            for seq in &arrivals {
                let fresh = p.receive(c, *seq);
                prop_assert_eq!(fresh, *seq > start && new.insert(*seq));
            }
            let mut through = start;
            while new.contains(&(through + 1)) {
                through += 1;
            }
            prop_assert_eq!(p.through()[&c], through);
        }
    }

    #[test]
    fn a_gap_keeps_the_position_until_it_is_filled() {
        let c = Uuid::nil();
        let mut p = Positions::default();
        for seq in 1..=216 {
            assert!(p.receive(c, seq));
        }
        assert!(p.receive(c, 601) && p.receive(c, 602));
        assert_eq!(p.through()[&c], 216, "the next sync asks from 216");
        for seq in 217..=600 {
            assert!(p.receive(c, seq), "{seq} is new");
        }
        assert!(!p.receive(c, 601), "601 was already held");
        assert_eq!(p.through()[&c], 602);
    }
}
