//! The ISA-88 unit state model: states, commands and the transitions between them.

use crate::DomainError;
use std::fmt;

/// The state of a unit (a discharge station, the shredder train, a hydromet unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnitState {
    Idle,
    Running,
    Complete,
    Holding,
    Held,
    Restarting,
    Stopping,
    Stopped,
    Aborting,
    Aborted,
    Resetting,
}

/// A command an operator (or the MES) gives a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnitCommand {
    Start,
    Hold,
    Restart,
    Stop,
    Abort,
    Reset,
}

impl UnitState {
    pub const ALL: [UnitState; 11] = [
        UnitState::Idle,
        UnitState::Running,
        UnitState::Complete,
        UnitState::Holding,
        UnitState::Held,
        UnitState::Restarting,
        UnitState::Stopping,
        UnitState::Stopped,
        UnitState::Aborting,
        UnitState::Aborted,
        UnitState::Resetting,
    ];

    /// The code a PLC state register holds (documented in simulators/README.md).
    pub fn code(self) -> u16 {
        match self {
            UnitState::Idle => 1,
            UnitState::Running => 2,
            UnitState::Complete => 3,
            UnitState::Holding => 4,
            UnitState::Held => 5,
            UnitState::Restarting => 6,
            UnitState::Stopping => 7,
            UnitState::Stopped => 8,
            UnitState::Aborting => 9,
            UnitState::Aborted => 10,
            UnitState::Resetting => 11,
        }
    }

    pub fn from_code(code: u16) -> Option<UnitState> {
        UnitState::ALL.into_iter().find(|s| s.code() == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            UnitState::Idle => "Idle",
            UnitState::Running => "Running",
            UnitState::Complete => "Complete",
            UnitState::Holding => "Holding",
            UnitState::Held => "Held",
            UnitState::Restarting => "Restarting",
            UnitState::Stopping => "Stopping",
            UnitState::Stopped => "Stopped",
            UnitState::Aborting => "Aborting",
            UnitState::Aborted => "Aborted",
            UnitState::Resetting => "Resetting",
        }
    }

    /// A transient state that ends by itself once the unit's action is done.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            UnitState::Holding
                | UnitState::Restarting
                | UnitState::Stopping
                | UnitState::Aborting
                | UnitState::Resetting
        )
    }

    /// The state a command leads to from here, or why it is refused.
    pub fn apply(self, cmd: UnitCommand) -> Result<UnitState, DomainError> {
        use UnitCommand as C;
        use UnitState as S;
        let next = match (self, cmd) {
            (S::Idle, C::Start) => S::Running,
            (S::Running, C::Hold) => S::Holding,
            (S::Held, C::Restart) => S::Restarting,
            (S::Running | S::Holding | S::Held | S::Restarting, C::Stop) => S::Stopping,
            (s, C::Abort) if !matches!(s, S::Aborting | S::Aborted) => S::Aborting,
            (S::Complete | S::Stopped | S::Aborted, C::Reset) => S::Resetting,
            (s, c) => {
                return Err(DomainError::NotAllowed(format!(
                    "{c} is not allowed in state {s}"
                )));
            }
        };
        Ok(next)
    }

    /// Where a transient state goes when its action completes; a running
    /// unit completes when its batch is done.
    pub fn settle(self) -> UnitState {
        match self {
            UnitState::Holding => UnitState::Held,
            UnitState::Restarting => UnitState::Running,
            UnitState::Stopping => UnitState::Stopped,
            UnitState::Aborting => UnitState::Aborted,
            UnitState::Resetting => UnitState::Idle,
            UnitState::Running => UnitState::Complete,
            s => s,
        }
    }
}

impl fmt::Display for UnitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl UnitCommand {
    pub const ALL: [UnitCommand; 6] = [
        UnitCommand::Start,
        UnitCommand::Hold,
        UnitCommand::Restart,
        UnitCommand::Stop,
        UnitCommand::Abort,
        UnitCommand::Reset,
    ];

    /// The code a PLC command register takes.
    pub fn code(self) -> u16 {
        match self {
            UnitCommand::Start => 1,
            UnitCommand::Hold => 2,
            UnitCommand::Restart => 3,
            UnitCommand::Stop => 4,
            UnitCommand::Abort => 5,
            UnitCommand::Reset => 6,
        }
    }

    pub fn from_code(code: u16) -> Option<UnitCommand> {
        UnitCommand::ALL.into_iter().find(|c| c.code() == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            UnitCommand::Start => "start",
            UnitCommand::Hold => "hold",
            UnitCommand::Restart => "restart",
            UnitCommand::Stop => "stop",
            UnitCommand::Abort => "abort",
            UnitCommand::Reset => "reset",
        }
    }

    pub fn from_name(s: &str) -> Option<UnitCommand> {
        UnitCommand::ALL.into_iter().find(|c| c.name() == s)
    }
}

impl fmt::Display for UnitCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use UnitCommand as C;
    use UnitState as S;

    fn check(from: S, cmd: C, expected: Option<S>) {
        assert_eq!(from.apply(cmd).ok(), expected, "{from} --{cmd}-->");
    }

    #[test]
    fn the_batch_cycle_runs_idle_to_complete_and_back() {
        check(S::Idle, C::Start, Some(S::Running));
        assert_eq!(S::Running.settle(), S::Complete);
        check(S::Complete, C::Reset, Some(S::Resetting));
        assert_eq!(S::Resetting.settle(), S::Idle);
    }

    #[test]
    fn hold_and_restart_pass_through_their_transient_states() {
        check(S::Running, C::Hold, Some(S::Holding));
        assert_eq!(S::Holding.settle(), S::Held);
        check(S::Held, C::Restart, Some(S::Restarting));
        assert_eq!(S::Restarting.settle(), S::Running);
    }

    #[test]
    fn commands_that_make_no_sense_are_refused_with_the_reason() {
        check(S::Idle, C::Hold, None);
        check(S::Running, C::Start, None);
        check(S::Aborted, C::Abort, None);
        check(S::Idle, C::Reset, None);
        let e = S::Running.apply(C::Start).unwrap_err().to_string();
        assert_eq!(e, "start is not allowed in state Running");
    }

    #[test]
    fn abort_is_possible_from_every_state_but_aborting_and_aborted() {
        for s in S::ALL {
            let ok = s.apply(C::Abort).is_ok();
            assert_eq!(ok, !matches!(s, S::Aborting | S::Aborted), "{s}");
        }
    }

    #[test]
    fn codes_round_trip() {
        for s in S::ALL {
            assert_eq!(S::from_code(s.code()), Some(s));
        }
        for c in C::ALL {
            assert_eq!(C::from_code(c.code()), Some(c));
            assert_eq!(C::from_name(c.name()), Some(c));
        }
    }
}
