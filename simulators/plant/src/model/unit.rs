//! The ISA-88 state machine of one simulated unit, as its PLC would run it.
//!
//! Transitions come from [`remine_domain::UnitState::apply`] and
//! [`remine_domain::UnitState::settle`]; this module adds what a PLC adds:
//! a command register that reads back the last written code, a "last
//! command rejected" status, and transient states (Holding, Stopping, ...)
//! that last a short while before they settle.

use remine_domain::{UnitCommand, UnitState};

/// How long a transient state (Holding, Restarting, Stopping, Aborting,
/// Resetting) lasts, in simulated seconds, before it settles.
pub const TRANSIENT_S: f64 = 2.0;

/// A command code that is not one of the ISA-88 codes (nor 0, "no command").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownCommand(pub u16);

/// The state machine, command register and rejection status of one unit.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitControl {
    state: UnitState,
    command: u16,
    rejected: u16,
    transient_left_s: f64,
}

impl Default for UnitControl {
    fn default() -> Self {
        UnitControl::new()
    }
}

impl UnitControl {
    /// An Idle unit with an empty command register.
    pub fn new() -> UnitControl {
        UnitControl {
            state: UnitState::Idle,
            command: 0,
            rejected: 0,
            transient_left_s: 0.0,
        }
    }

    pub fn state(&self) -> UnitState {
        self.state
    }

    /// The command register: the last code written, 0 before any.
    pub fn command_register(&self) -> u16 {
        self.command
    }

    /// 0 when the last command was accepted (or none was given), else the
    /// code of the command that was refused.
    pub fn rejected(&self) -> u16 {
        self.rejected
    }

    /// Parse a written command code: `Ok(None)` for 0 ("no command").
    pub fn parse(code: u16) -> Result<Option<UnitCommand>, UnknownCommand> {
        if code == 0 {
            return Ok(None);
        }
        UnitCommand::from_code(code)
            .map(Some)
            .ok_or(UnknownCommand(code))
    }

    /// Store a written command code in the command register; the caller
    /// then acts on it with [`UnitControl::apply`] or [`UnitControl::refuse`].
    pub fn record(&mut self, code: u16) {
        self.command = code;
    }

    /// Act on a command the line's own interlocks allow: the state model
    /// decides. Returns the new state, or `None` when the state model refused
    /// it (the state is unchanged and the rejection status set).
    pub fn apply(&mut self, cmd: UnitCommand) -> Option<UnitState> {
        match self.state.apply(cmd) {
            Ok(next) => {
                self.enter(next);
                self.rejected = 0;
                Some(next)
            }
            Err(_) => {
                self.rejected = cmd.code();
                None
            }
        }
    }

    /// Refuse a command for a reason of the line's own (an interlock, a unit
    /// not loaded): the state is unchanged and the rejection status set.
    pub fn refuse(&mut self, cmd: UnitCommand) {
        self.rejected = cmd.code();
    }

    /// A transition the unit makes by itself (a trip aborts, an
    /// over-temperature holds); no command register involved.
    pub fn force(&mut self, cmd: UnitCommand) -> bool {
        match self.state.apply(cmd) {
            Ok(next) => {
                self.enter(next);
                true
            }
            Err(_) => false,
        }
    }

    /// A running unit whose batch is done completes.
    pub fn complete(&mut self) {
        if self.state == UnitState::Running {
            self.enter(self.state.settle());
        }
    }

    /// Let time pass: a transient state settles once its action is done.
    /// Returns the state it settled into, if it did.
    pub fn step(&mut self, dt: f64) -> Option<UnitState> {
        if !self.state.is_transient() {
            return None;
        }
        self.transient_left_s -= dt;
        if self.transient_left_s <= 0.0 {
            let next = self.state.settle();
            self.enter(next);
            Some(next)
        } else {
            None
        }
    }

    fn enter(&mut self, next: UnitState) {
        self.state = next;
        self.transient_left_s = if next.is_transient() {
            TRANSIENT_S
        } else {
            0.0
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use UnitCommand as C;
    use UnitState as S;

    fn check(start: &[C], cmd: C, state: S, rejected: u16) {
        let mut u = UnitControl::new();
        for c in start {
            u.apply(*c);
            u.step(TRANSIENT_S);
        }
        u.record(cmd.code());
        u.apply(cmd);
        u.step(TRANSIENT_S);
        assert_eq!(
            (u.state(), u.rejected()),
            (state, rejected),
            "{start:?} then {cmd}"
        );
        assert_eq!(u.command_register(), cmd.code());
    }

    #[test]
    fn accepted_commands_move_the_state_and_clear_the_rejection() {
        check(&[], C::Start, S::Running, 0);
        check(&[C::Start], C::Hold, S::Held, 0);
        check(&[C::Start, C::Hold], C::Restart, S::Running, 0);
        check(&[C::Start], C::Abort, S::Aborted, 0);
        check(&[C::Start, C::Stop], C::Reset, S::Idle, 0);
    }

    #[test]
    fn refused_commands_leave_the_state_and_name_the_refused_code() {
        check(&[C::Start], C::Start, S::Running, 1);
        check(&[], C::Hold, S::Idle, 2);
        check(&[], C::Reset, S::Idle, 6);
    }

    #[test]
    fn transient_states_last_until_their_action_time_has_passed() {
        let mut u = UnitControl::new();
        u.apply(C::Start);
        u.apply(C::Stop);
        assert_eq!(u.step(TRANSIENT_S / 2.0), None);
        assert_eq!(u.state(), S::Stopping);
        assert_eq!(u.step(TRANSIENT_S), Some(S::Stopped));
    }

    #[test]
    fn command_codes_parse_with_zero_as_no_command() {
        assert_eq!(UnitControl::parse(0), Ok(None));
        assert_eq!(UnitControl::parse(1), Ok(Some(C::Start)));
        assert_eq!(UnitControl::parse(7), Err(UnknownCommand(7)));
    }
}
