//! `given(history).when(decision)`: how a case decision is tested, whichever it is
//! (routing's, rules', an agent's change, a delivery outcome, a visitor card).
//!
//! The history is folded into the state as the store folds it; the decision is any pure
//! function over that state. [`Then`] holds what it decided and the state after it, so a
//! second decision can be asked of the result (`.when(…)` again).

use deskie_domain::case::CaseState;
use deskie_proto::events::Event;

/// A case as `history` left it.
pub fn given(history: impl IntoIterator<Item = Event>) -> Given {
    let history: Vec<Event> = history.into_iter().collect();
    Given {
        state: CaseState::from_events(&history),
    }
}

/// A case's state, before a decision.
#[derive(Debug, Clone)]
pub struct Given {
    state: CaseState,
}

impl Given {
    /// A case in `state` (a snapshot plus what a decision asked about, say).
    pub fn of(state: CaseState) -> Self {
        Self { state }
    }

    /// The state the decision will see.
    pub fn state(&self) -> &CaseState {
        &self.state
    }

    /// What `decide` decides against this state.
    pub fn when(&self, decide: impl FnOnce(&CaseState) -> Vec<Event>) -> Then {
        let decided = decide(&self.state);
        let mut after = self.state.clone();
        for event in &decided {
            after.apply(event);
        }
        Then { decided, after }
    }
}

/// What a decision decided, and the case after it.
#[derive(Debug, Clone)]
pub struct Then {
    decided: Vec<Event>,
    after: CaseState,
}

impl Then {
    /// The decided events.
    pub fn events(&self) -> &[Event] {
        &self.decided
    }

    /// Their type names, e.g. `["case_status_changed"]`.
    pub fn types(&self) -> Vec<&'static str> {
        self.decided.iter().map(Event::type_name).collect()
    }

    /// The state once the decided events are applied.
    pub fn state(&self) -> &CaseState {
        &self.after
    }

    /// Asserts the decided events' types, in order.
    #[track_caller]
    pub fn decides(&self, types: &[&str]) -> &Self {
        assert_eq!(self.types(), types, "decided {:#?}", self.decided);
        self
    }

    /// Asserts that nothing was decided.
    #[track_caller]
    pub fn decides_nothing(&self) {
        assert!(self.decided.is_empty(), "decided {:#?}", self.decided);
    }

    /// The next decision, against the state after this one.
    pub fn when(&self, decide: impl FnOnce(&CaseState) -> Vec<Event>) -> Then {
        Given {
            state: self.after.clone(),
        }
        .when(decide)
    }
}
