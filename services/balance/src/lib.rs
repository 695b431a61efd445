//! Mass balance and data reconciliation for a recycling plant.
//!
//! Every arrow of the flowsheet moves mass, and every reading of that mass
//! disagrees a little with the others: weighbridges by 0.1-0.2 %, belt
//! weighers by 0.5 %, tank volumes by 1-2 %, assays by 1-5 % (domain brief
//! section 6). This crate states what the readings say about each process
//! node and period ([`mass_balance`]), and then finds the values closest to
//! the readings, weighted by their uncertainty, that obey every balance
//! ([`reconcile`]): the numbers metal accounting reports, each with its
//! adjustment, its reconciled uncertainty and whether the balances check it.
//!
//! # Model
//! A [`Network`] is made by a [`NetworkBuilder`], which checks every name
//! and value and reports the first fault as a [`BalanceError`] naming the
//! node, stream, element or instrument. It holds
//! - nodes: process units over a period ("shredder 2026-03") or one batch
//!   ("leach L-17"), each balancing the total mass and/or listed elements
//!   ([`Balances`]), optionally with opening and closing inventories;
//! - streams between nodes or from/to the environment, each with a dry mass
//!   that is a [`Reading`] (value, sigma, instrument) or unmeasured, and per
//!   element an [`Assay`]: measured, unmeasured, free of the element, or the
//!   same as another stream's (a portion of a lot carries the lot's assay,
//!   one variable for all portions).
//! - content factors ([`NetworkBuilder::factor`]): a booked content whose
//!   error is shared by many streams (a chemistry estimate is wrong alike
//!   for every unit of that chemistry) is [`Assay::Factored`]: the stream's
//!   fraction is its booked fraction times the shared factor (one variable,
//!   measured as 1 with the source's relative sigma) plus an independent
//!   error of its own (measured as 0). Both terms are products of a mass
//!   and one variable, so the bilinear machinery below carries them as it
//!   carries assays; an assay downstream then corrects the factor for all
//!   its streams at once instead of spreading over them as if each erred
//!   alone. A stream that blends material booked from several sources is
//!   [`Assay::Blended`]: each source's share of the booked fraction times
//!   its factor, plus the stream's own error.
//!
//! The balance of node n for the total is `sum_in m - sum_out m - (closing -
//! opening) = 0`, and for an element `sum_in m x - sum_out m x - (closing -
//! opening) = 0`: bilinear in masses and assays.
//!
//! # Method
//! The balances split into connected components (equations that share a
//! variable); a plant year is thousands of small campaigns, reconciled
//! independently and in parallel (rayon). Each component is solved by
//! successive linearisation, as commercial tools do:
//! 1. Linearise the balances at the current estimate: `J_x dx + J_u du + f = 0`
//!    (`x` measured, `u` unmeasured).
//! 2. Eliminate the unmeasured values (Crowe's projection): only the rows
//!    that contain an unknown are touched; the left null space of their
//!    `J_u` (columns scaled to unit length, from a symmetric
//!    eigen-decomposition of `J_u J_u'`) gives the combinations free of
//!    unknowns. With the other rows they form the reduced equations `A x = b`.
//! 3. Weighted least squares on the measured values: `x = y - V A' M^+ (A y - b)`
//!    with `M = A V A'`, a Cholesky factorisation of the diagonally scaled
//!    `M` (nalgebra), falling back to an eigen pseudo-inverse when the
//!    equations are dependent.
//! 4. The unknowns follow from `J_u du = -(f + J_x dx)` by the pseudo-inverse.
//! 5. Repeat until no measured value moves by more than `tolerance` sigma and
//!    no unknown by more than `tolerance` of itself ([`Options`]), or until
//!    a step below 1e-7 sigma is no smaller than the one before (rounding
//!    noise: a year-long component's steps level off near 1e-10). The fixed
//!    point satisfies the first-order conditions of the bilinear problem.
//!
//! At the solution: a reading is redundant when the balances shrink its
//! variance (`V - V A' M^+ A V`), otherwise just determinable (adjustment
//! zero); an unknown is determinable when its unit vector lies in the row
//! space of `J_u`, and its sigma comes from its linear dependence on the
//! readings (from one balance row that fixes it alone where there is one:
//! any left inverse gives the same variance on the balances' solution set,
//! and one row keeps it to a few terms). Gross errors: the global test compares the weighted sum of
//! squared adjustments with the chi-square distribution of `rank(A)`
//! degrees of freedom (statrs); the measurement test flags readings whose
//! normalised adjustment `|a| / sigma(a)` exceeds the two-sided normal
//! quantile at `alpha`, Bonferroni-corrected over the component's redundant
//! readings, and names them, largest first. A weigher that reads high on
//! many streams smears over the few readings those streams meet in the
//! balances, so each instrument (all readings of one name) is also tested
//! for a relative bias with the generalised likelihood ratio statistic of
//! that signature (Narasimhan and Mah), summed over the components; it
//! estimates the bias and its sigma.
//!
//! Element balances of a node whose streams all carry one assay (a lot
//! split into portions) are that assay times its total balance and are
//! not solved again. Unknowns are eliminated per cluster of rows that share
//! them (densely; `max_component_equations` refuses a larger cluster). A
//! component of up to `dense_equations` reduced equations is solved densely
//! (nalgebra); a larger one, such as a plant year whose blends chain every
//! lot, by faer's sparse Cholesky of `M` in a minimum-degree order, reused
//! across linearisations (`max_factor_entries` refuses a factor too large
//! for memory). A reading that enters very many equations (a content
//! factor over a year) is kept out of the sparse factor and added back
//! exactly by the Woodbury identity, so it does not make them one dense
//! block.
//!
//! ```
//! use remine_balance::{Balances, Endpoint, NetworkBuilder, Options, Reading, reconcile};
//! let kg = |v: f64, s: f64, name: &str| Some(Reading::kg(v, s, name).unwrap());
//! let mut b = NetworkBuilder::new();
//! b.node("splitter", Balances::total_only())
//!     .stream("feed", Endpoint::Environment, Endpoint::node("splitter"), kg(100.0, 1.0, "weighbridge"))
//!     .stream("a", Endpoint::node("splitter"), Endpoint::Environment, kg(61.0, 1.0, "belt weigher BW-1"))
//!     .stream("b", Endpoint::node("splitter"), Endpoint::Environment, kg(42.0, 1.0, "belt weigher BW-2"));
//! let network = b.build().unwrap();
//! let r = reconcile(&network, &Options::default()).unwrap();
//! let m = |s: &str| r.stream_mass(s).unwrap().estimate.unwrap();
//! assert!((m("feed") - m("a") - m("b")).abs() < 1e-9);
//! assert!((m("feed") - 101.0).abs() < 1e-9);
//! ```

mod balance;
mod error;
mod network;
mod reconcile;
mod sparse;

pub use balance::{Closure, NodeBalance, mass_balance};
pub use error::BalanceError;
pub use network::{
    Assay, Balances, End, Endpoint, Network, NetworkBuilder, Quantity, Reading, Variable,
};
pub use reconcile::{
    ChiSquareTest, Class, ComponentReport, FactorParts, InstrumentTest, LinearSystem,
    MeasurementResult, Options, ReconciledBalance, Reconciliation, StreamView, Suspect, VarResult,
    linear_systems, reconcile,
};
