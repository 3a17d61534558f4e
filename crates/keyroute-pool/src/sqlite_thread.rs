//! Where a SQLite query runs: [`CallerThread`], the [`SpawnBlocking`] of keyroute's
//! SQLite connections.
//!
//! diesel's `SqliteConnection` is synchronous; diesel-async's `SyncConnectionWrapper`
//! makes it usable from async code by handing every query to a [`SpawnBlocking`]. Its
//! default sends each query to Tokio's blocking pool and waits for the answer: two
//! thread hand-offs (there and back, each a wake-up of a parked thread) around a key
//! lookup that SQLite answers in about 7 µs from a file in the page cache, which made
//! the lookup cost 53-97 µs. This module runs the query where it can instead:
//!
//! - **Multi-threaded runtime**: on the calling thread, inside
//!   [`tokio::task::block_in_place`]. That is what `block_in_place` is for: the worker
//!   gives its run queue to another thread (started in the background, not waited
//!   for), so other tasks keep running while this one blocks for the query, and the
//!   query's own latency gains no hop. Measured on the lookup benchmark
//!   (`bash scripts/bench store`), see the commit that introduced this file. Running
//!   the query inline *without* `block_in_place` would be cheaper still, but a SQLite
//!   query can block for as long as `busy_timeout` (a writer holding the lock) or a
//!   disk read, and that must never stall a worker's other tasks.
//! - **Outside any runtime** (a plain thread, `futures::executor::block_on`): on the
//!   calling thread; nothing else is scheduled there.
//! - **Current-thread runtime**: blocking its only thread would stall every task, so
//!   the query goes to the blocking pool as before. If the future is dropped while
//!   the query runs, the drop waits for the query to finish: the connection is shared
//!   with the running query (diesel-async keeps it in an `Arc<Mutex<_>>`), and handing
//!   it back to the pool while shared would panic inside diesel-async, which is what
//!   its own wrapper did there (its drop calls `block_in_place`, which panics on a
//!   current-thread runtime). A dropped query is at most one statement that is
//!   already running; waiting for it is the price of a connection that stays whole.
//!
//! Cancellation: on the first two paths the query runs to completion within a single
//! `poll`, so a dropped future either never started its query or already finished it.
//! A panic inside a query is returned as an error, as the blocking pool would.

use std::error::Error;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll};

use diesel_async::sync_connection_wrapper::SpawnBlocking;
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::task::JoinHandle;

/// What a query that could not run reports (diesel-async turns it into a
/// `DatabaseError(UnableToSendCommand, ..)`).
type TaskError = Box<dyn Error + Send + Sync + 'static>;

/// Runs each SQLite query on the calling thread where blocking it is allowed, and on
/// Tokio's blocking pool where it is not (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct CallerThread;

impl SpawnBlocking for CallerThread {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> Pin<Box<dyn Future<Output = Result<R, TaskError>> + Send + 'a>>
    where
        R: Send + 'static,
    {
        Box::pin(Query::NotStarted(Some(task)))
    }

    fn get_runtime() -> Self {
        Self
    }
}

/// Runs `task`, turning a panic into an error.
fn run<R>(task: impl FnOnce() -> R) -> Result<R, TaskError> {
    catch_unwind(AssertUnwindSafe(task)).map_err(|_| "a SQLite query panicked".into())
}

/// One query on its way through [`CallerThread`].
enum Query<F, R> {
    /// Not polled yet: where it runs is decided by the thread that polls it.
    NotStarted(Option<F>),
    /// Running on the blocking pool (current-thread runtime only).
    OnBlockingPool {
        handle: JoinHandle<Result<R, TaskError>>,
        finished: Arc<Finished>,
    },
    /// Answered.
    Done,
}

// `F` is only ever moved out, never pinned, and `JoinHandle` is `Unpin`.
impl<F, R> Unpin for Query<F, R> {}

impl<F, R> Future for Query<F, R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    type Output = Result<R, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match this {
                Query::NotStarted(task) => {
                    let Some(task) = task.take() else {
                        return Poll::Ready(Err("a SQLite query was polled twice".into()));
                    };
                    let handle = match Handle::try_current() {
                        Err(_) => return Poll::Ready(run(task)),
                        Ok(handle) => handle,
                    };
                    if handle.runtime_flavor() == RuntimeFlavor::MultiThread {
                        *this = Query::Done;
                        return Poll::Ready(tokio::task::block_in_place(|| run(task)));
                    }
                    let finished = Arc::new(Finished::default());
                    let job = Job {
                        task,
                        _signal: Signal(Arc::clone(&finished)),
                    };
                    *this = Query::OnBlockingPool {
                        handle: handle.spawn_blocking(move || job.run()),
                        finished,
                    };
                }
                Query::OnBlockingPool { handle, .. } => {
                    let answer = match Pin::new(handle).poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(answer)) => answer,
                        Poll::Ready(Err(e)) => Err(e.into()),
                    };
                    *this = Query::Done;
                    return Poll::Ready(answer);
                }
                Query::Done => {
                    return Poll::Ready(Err("a SQLite query was polled after it answered".into()));
                }
            }
        }
    }
}

impl<F, R> Drop for Query<F, R> {
    fn drop(&mut self) {
        if let Query::OnBlockingPool { handle, finished } = self
            && !handle.is_finished()
        {
            // The query holds the connection; see the module docs for why we wait.
            finished.wait();
        }
    }
}

/// Set once a job's task has run or been dropped unrun.
#[derive(Default)]
struct Finished {
    done: Mutex<bool>,
    changed: Condvar,
}

impl Finished {
    fn wait(&self) {
        let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        while !*done {
            done = self
                .changed
                .wait(done)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Marks its [`Finished`] when dropped: after the task ran, or with the task when the
/// runtime shuts down before running it.
struct Signal(Arc<Finished>);

impl Drop for Signal {
    fn drop(&mut self) {
        *self.0.done.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.0.changed.notify_all();
    }
}

/// A task for the blocking pool. Fields drop in order, so an unrun task (and the
/// connection it holds) is gone before its signal fires.
struct Job<F> {
    task: F,
    _signal: Signal,
}

impl<F> Job<F> {
    fn run<R>(self) -> Result<R, TaskError>
    where
        F: FnOnce() -> R,
    {
        let Job { task, _signal } = self;
        // The task (and with it the connection's `Arc`) is consumed here, before
        // `_signal` drops at the end of this function.
        run(task)
    }
}
