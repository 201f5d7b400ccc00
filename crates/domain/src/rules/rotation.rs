//! Round-robin (`assign_round_robin`): who may take a case of a group now, and who is next.

use uuid::Uuid;

/// An agent who could take part in round-robin: online, with Live Chat access (what the
/// rules service queries), and the groups whose cases they take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationCandidate {
    /// The agent.
    pub id: Uuid,
    /// The agent's groups; empty = every group.
    pub group_ids: Vec<Uuid>,
}

impl RotationCandidate {
    /// Whether the agent takes cases of `group`: an agent without groups takes every
    /// group's cases (and those of a case without a group); an agent with groups, only
    /// theirs.
    pub fn serves(&self, group: Option<Uuid>) -> bool {
        self.group_ids.is_empty() || group.is_some_and(|group| self.group_ids.contains(&group))
    }
}

/// Who is next for `assign_round_robin`: the agents who may take the case now (online, with
/// Live Chat access, in the case's group), and who got the previous case of the rotation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Candidates, in a stable order (e.g. by id).
    pub online: Vec<Uuid>,
    /// The agent the rotation assigned last, online or not.
    pub last: Option<Uuid>,
}

impl Rotation {
    /// The rotation of the case's `group`: the `candidates` who serve it
    /// ([`RotationCandidate::serves`]), after `last`, the agent that group's rotation
    /// assigned last.
    pub fn of_group(
        group: Option<Uuid>,
        candidates: &[RotationCandidate],
        last: Option<Uuid>,
    ) -> Self {
        Self {
            online: candidates
                .iter()
                .filter(|candidate| candidate.serves(group))
                .map(|candidate| candidate.id)
                .collect(),
            last,
        }
    }

    /// The first candidate after `last` in order (wrapping), or the first one; `None` when
    /// nobody is online. An offline agent is skipped without losing their place.
    pub fn next(&self) -> Option<Uuid> {
        let mut sorted = self.online.clone();
        sorted.sort_unstable();
        let after_last = self
            .last
            .and_then(|last| sorted.iter().find(|agent| **agent > last));
        after_last.or_else(|| sorted.first()).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u128) -> Vec<Uuid> {
        (1..=n).map(Uuid::from_u128).collect()
    }

    #[test]
    fn the_rotation_goes_round_skipping_who_is_offline() {
        let agents = ids(3);
        let mut rotation = Rotation {
            online: agents.clone(),
            last: None,
        };
        let mut counts = [0; 3];
        for _ in 0..30 {
            let next = rotation.next().expect("someone is online");
            counts[agents.iter().position(|a| *a == next).expect("known")] += 1;
            rotation.last = Some(next);
        }
        assert_eq!(counts, [10, 10, 10]);

        // Agent 2 goes offline right after agent 1 got a case: agent 3 is next.
        rotation.online = vec![agents[0], agents[2]];
        rotation.last = Some(agents[0]);
        assert_eq!(rotation.next(), Some(agents[2]));
        rotation.last = Some(agents[2]);
        assert_eq!(rotation.next(), Some(agents[0]), "wraps around");
        rotation.online.clear();
        assert_eq!(rotation.next(), None, "nobody online: nobody assigned");
    }

    fn candidate(id: u128, groups: &[Uuid]) -> RotationCandidate {
        RotationCandidate {
            id: Uuid::from_u128(id),
            group_ids: groups.to_vec(),
        }
    }

    #[test]
    fn a_groups_rotation_takes_its_members_and_agents_without_groups_evenly() {
        let (a, b, c) = (
            Uuid::from_u128(100),
            Uuid::from_u128(200),
            Uuid::from_u128(300),
        );
        let candidates = [
            candidate(1, &[a]),
            candidate(2, &[b]),
            candidate(3, &[]),
            candidate(4, &[b, a]),
        ];
        let members = |group| Rotation::of_group(group, &candidates, None).online;
        assert_eq!(
            members(Some(a)),
            [1, 3, 4].map(Uuid::from_u128),
            "members of a and agents without groups"
        );
        assert_eq!(
            members(Some(b)),
            [2, 3, 4].map(Uuid::from_u128),
            "members of b and agents without groups"
        );
        assert_eq!(
            members(Some(c)),
            [Uuid::from_u128(3)],
            "nobody in c: only who takes every group"
        );
        assert_eq!(
            members(None),
            [Uuid::from_u128(3)],
            "a case without a group"
        );

        // Group a's rotation, 30 cases: 10 each for 1, 3 and 4; never 2.
        let mut last = None;
        let mut counts = std::collections::BTreeMap::new();
        for _ in 0..30 {
            let next = Rotation::of_group(Some(a), &candidates, last)
                .next()
                .expect("someone serves a");
            *counts.entry(next.as_u128()).or_insert(0) += 1;
            last = Some(next);
        }
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            [(1, 10), (3, 10), (4, 10)]
        );

        // Nobody of the group online (the query returns only online agents): nobody.
        let only_b = [candidate(2, &[b])];
        assert_eq!(Rotation::of_group(Some(a), &only_b, last).next(), None);
        assert_eq!(Rotation::of_group(Some(a), &[], None).next(), None);
    }
}
