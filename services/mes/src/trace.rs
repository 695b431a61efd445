//! Genealogy traces from the store: backward to the input units and their
//! passports, forward to the lots made from an input, and recall impact.
//!
//! [`Tracer`] loads every lot and edge once and builds the domain's
//! [`LotGraph`]; traces are then answered in memory. The element masses the
//! graph allocates are the recorded ones ([`Tracer::load`]) or whatever a
//! caller supplies per lot ([`Tracer::load_with`]), which is where reconciled
//! values come in. [`TraceCache`] keeps the graph between requests until
//! the store's genealogy mark moves.

use crate::{MesError, ReconciledContents};
use remine_domain::ports::{LotStore, StoreError};
use remine_domain::{
    BackwardTrace, ElementMasses, ForwardTrace, Lot, LotGraph, LotId, RecallImpact,
};
use std::sync::Arc;

/// Answers traces on a snapshot of the stored genealogy.
#[derive(Debug, Clone)]
pub struct Tracer {
    graph: LotGraph,
}

impl Tracer {
    /// The genealogy as stored, with each lot's recorded element masses.
    #[tracing::instrument(skip_all)]
    pub async fn load(store: &dyn LotStore) -> Result<Tracer, MesError> {
        Tracer::load_with(store, |l| l.elements().clone()).await
    }

    /// The genealogy as stored, with each lot's element masses from
    /// `content` (for example reconciled ones).
    #[tracing::instrument(skip_all)]
    pub async fn load_with(
        store: &dyn LotStore,
        content: impl Fn(&Lot) -> ElementMasses,
    ) -> Result<Tracer, MesError> {
        let lots = store.lots().await?;
        let edges = store.edges().await?;
        let graph = LotGraph::with_content(&lots, &edges, content)
            .map_err(|e| StoreError::Corrupt(format!("lot_edges: {e}")))?;
        Ok(Tracer { graph })
    }

    /// The genealogy as stored, with each lot's element masses as a
    /// period's balance reconciled them (recorded where it did not).
    #[tracing::instrument(skip_all)]
    pub async fn load_reconciled(
        store: &dyn LotStore,
        contents: &ReconciledContents,
    ) -> Result<Tracer, MesError> {
        Tracer::load_with(store, |l| contents.content(l)).await
    }

    /// A tracer on a graph built elsewhere.
    pub fn from_graph(graph: LotGraph) -> Tracer {
        Tracer { graph }
    }

    pub fn graph(&self) -> &LotGraph {
        &self.graph
    }

    /// The input units (and lots in between) `lot` came from, with the part
    /// of each element allocated to each.
    pub fn backward(&self, lot: &LotId) -> Result<BackwardTrace<'_>, MesError> {
        self.known(lot)?;
        Ok(self.graph.backward(lot)?)
    }

    /// Every lot made from `lot`, with the part of it attributed to `lot`.
    pub fn forward(&self, lot: &LotId) -> Result<ForwardTrace<'_>, MesError> {
        self.known(lot)?;
        Ok(self.graph.forward(lot)?)
    }

    /// Every lot made from any of `suspects`, with the part attributable to
    /// them.
    pub fn recall(&self, suspects: &[LotId]) -> Result<RecallImpact<'_>, MesError> {
        for lot in suspects {
            self.known(lot)?;
        }
        Ok(self.graph.recall(suspects)?)
    }

    fn known(&self, lot: &LotId) -> Result<(), MesError> {
        if self.graph.contains(lot) {
            Ok(())
        } else {
            Err(StoreError::NotFound(format!("lot {lot}")).into())
        }
    }
}

/// Keeps one [`Tracer`] between traces until the genealogy changes (the
/// store's [`LotStore::genealogy_mark`] moves), so a server answers a
/// trace from memory instead of reading every lot and edge each time.
/// Cheap to clone; clones share the graph.
#[derive(Debug, Clone, Default)]
pub struct TraceCache {
    slot: Arc<tokio::sync::Mutex<Option<Kept>>>,
}

/// The genealogy mark a tracer was loaded at, and the tracer.
type Kept = (i64, Arc<Tracer>);

impl TraceCache {
    /// The tracer of the genealogy as stored now: the kept one while the
    /// mark has not moved, else a fresh load (one at a time: a second
    /// request waits for the load under way).
    #[tracing::instrument(skip_all)]
    pub async fn tracer(&self, store: &dyn LotStore) -> Result<Arc<Tracer>, MesError> {
        let mut slot = self.slot.lock().await;
        // Read before loading: a lot added during the load moves the mark
        // past this one, and the next request loads again.
        let mark = store.genealogy_mark().await?;
        if let Some((kept, tracer)) = slot.as_ref()
            && *kept == mark
        {
            return Ok(tracer.clone());
        }
        let tracer = Arc::new(Tracer::load(store).await?);
        *slot = Some((mark, tracer.clone()));
        Ok(tracer)
    }
}
