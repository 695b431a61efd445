//! The background tasks of one adapter (a poller per device, a connection
//! task per server), stopped together.
//!
//! Dropping the adapter cancels them; `shutdown` also waits, up to a grace
//! period each, for them to close their connections.

use std::future::Future;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// One task per link, sharing one cancellation token. Dropping it cancels them.
#[derive(Debug)]
pub struct Workers {
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Spawns `task(k, cancel)` on `runtime` for every link `k` in `0..links`.
    /// Each task is to end soon after `cancel` fires.
    pub fn spawn<F, Fut>(runtime: &Handle, links: usize, mut task: F) -> Workers
    where
        F: FnMut(usize, CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let cancel = CancellationToken::new();
        let tasks = (0..links)
            .map(|k| runtime.spawn(task(k, cancel.clone())))
            .collect();
        Workers { cancel, tasks }
    }

    /// Spawns one more task, `task(cancel)`, stopped with the others.
    pub fn also<F, Fut>(&mut self, runtime: &Handle, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tasks.push(runtime.spawn(task(self.cancel.clone())));
    }

    /// Cancels every task and waits up to `grace` for each to end; `what`
    /// names one task in the warning about a task that does not (`a Modbus
    /// poller`).
    pub async fn shutdown(mut self, grace: Duration, what: &str) {
        self.cancel.cancel();
        for task in std::mem::take(&mut self.tasks) {
            if timeout(grace, task).await.is_err() {
                tracing::warn!("{what} did not stop within {grace:?}");
            }
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Spawns `links` tasks that count how many of them saw the cancellation.
    fn counting(links: usize) -> (Workers, Arc<AtomicUsize>) {
        let stopped = Arc::new(AtomicUsize::new(0));
        let workers = Workers::spawn(&Handle::current(), links, |_, cancel| {
            let stopped = stopped.clone();
            async move {
                cancel.cancelled().await;
                stopped.fetch_add(1, Ordering::SeqCst);
            }
        });
        (workers, stopped)
    }

    #[tokio::test]
    async fn shutdown_stops_every_task_and_waits_for_it() {
        let (workers, stopped) = counting(3);
        workers
            .shutdown(Duration::from_secs(2), "a test task")
            .await;
        assert_eq!(stopped.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn dropping_the_workers_cancels_the_tasks() {
        let (workers, stopped) = counting(2);
        drop(workers);
        for _ in 0..100 {
            if stopped.load(Ordering::SeqCst) == 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(stopped.load(Ordering::SeqCst), 2, "tasks still running");
    }

    #[tokio::test]
    async fn a_task_that_ignores_cancellation_does_not_hang_shutdown() {
        let workers = Workers::spawn(&Handle::current(), 1, |_, _| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        let t0 = std::time::Instant::now();
        workers
            .shutdown(Duration::from_millis(50), "a stuck task")
            .await;
        assert!(t0.elapsed() < Duration::from_secs(2));
    }
}
