//! The crate's one error type: bad input to the network builder, named by
//! node, stream, element or instrument and value, and numerical failures.

/// Why a network could not be built or reconciled. Every message names the
/// node, stream, element, instrument or value at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BalanceError {
    /// A reading that is not a number, negative, a fraction above one, or
    /// has a sigma that is not positive.
    #[error("{instrument}: {what} must be {rule} (got {value})")]
    BadReading {
        instrument: String,
        what: &'static str,
        rule: &'static str,
        value: String,
    },
    /// A stream that starts or ends at a node nobody declared.
    #[error("stream '{stream}' {end} unknown node '{node}'")]
    UnknownNode {
        stream: String,
        end: &'static str,
        node: String,
    },
    /// A stream named by an assay or an inventory that nobody declared.
    #[error("{by} names unknown stream '{stream}'")]
    UnknownStream { stream: String, by: String },
    /// A factored assay that names a content factor nobody declared.
    #[error("{by} names unknown content factor '{factor}'")]
    UnknownFactor { factor: String, by: String },
    /// Two nodes or two streams of one name, or one assay given twice.
    #[error("{what} '{name}' is declared twice")]
    Duplicate { what: &'static str, name: String },
    /// A node balances an element that one of its streams says nothing about.
    #[error(
        "node '{node}' balances {element} but stream '{stream}' declares no {element} assay \
         (declare it measured, unmeasured, free or the same as another stream's)"
    )]
    MissingAssay {
        node: String,
        stream: String,
        element: String,
    },
    /// A stream that cannot be placed in the network.
    #[error("stream '{stream}': {why}")]
    BadStream { stream: String, why: String },
    /// A node that cannot be balanced as declared.
    #[error("node '{node}': {why}")]
    BadNode { node: String, why: String },
    /// The linear algebra failed on a component (it should not on finite input).
    #[error("reconciliation of the balances around node '{node}' failed: {why}")]
    Numerical { node: String, why: String },
    /// Too many balances share unmeasured values (joined through them):
    /// they are eliminated densely, so a larger set is refused.
    #[error(
        "the balances around node '{node}' share unmeasured values across {equations} equations; \
         at most {max} are eliminated at once (measure some of them, or reconcile a shorter period)"
    )]
    ComponentTooLarge {
        node: String,
        equations: usize,
        max: usize,
    },
    /// The sparse factorisation of one connected set of balances would
    /// need more memory than allowed.
    #[error(
        "the balances around node '{node}' ({equations} reduced equations) need a sparse factor \
         of {entries} entries; at most {max} are allowed (reconcile a shorter period)"
    )]
    FactorTooLarge {
        node: String,
        equations: usize,
        entries: usize,
        max: usize,
    },
}
