//! Where a SQLite query runs: [`ConnectionThread`], the [`SpawnBlocking`] of keyroute's
//! SQLite connections.
//!
//! diesel's `SqliteConnection` is synchronous; diesel-async's `SyncConnectionWrapper`
//! makes it usable from async code by handing every query to a [`SpawnBlocking`].
//! A connection keyroute opens runs a query on the calling Tokio worker when its
//! file's gate allows (`sqlite_gate.rs`: no transaction open on the file, no query of
//! the file ran long in the last second, a multi-threaded runtime), and otherwise on
//! a thread of the connection's own, started when the connection opens (opening a
//! file is I/O) and ended when it closes. A query waiting for SQLite's write lock behind a
//! transaction (up to `busy_timeout`) therefore blocks only that connection's thread,
//! never a Tokio worker and the tasks queued behind it. A connection opened some other
//! way (`ConnectionThread::default()`) runs every query on its thread.
//!
//! Why not the alternatives (measured with `bash scripts/bench http` on SQLite, 64
//! connections, pools of 8; see BENCHMARKS.md):
//! - **`block_in_place` on the calling worker** (keyroute's executor before the
//!   threads): no hop for the query itself, but every call hands the worker's run
//!   queue to another thread taken from, or started in, Tokio's blocking pool. Under
//!   load that meant 300-380 threads, a third of the CPU in the kernel switching
//!   between them, and about twice the p99 latency of plain pools for the same work.
//! - **Tokio's blocking pool** (`spawn_blocking`, diesel-async's default): two hops per
//!   query and a thread count that follows bursts (about 100 threads in the same run),
//!   the shared queue contended by every connection.
//! - **Always on the connection's thread** (keyroute's executor from 2026-12-02 to
//!   2026-12-05): two thread wake-ups per query, 12-15 µs of CPU per request on these
//!   VMs, about a quarter of a whole SQLite request over HTTP.
//! - **Always inline, on the worker**: a write waiting for the lock behind a
//!   transaction stalls the worker and every task queued on it; with every worker
//!   stalled so, the transaction's own task cannot reach its `COMMIT` until
//!   `busy_timeout` ends. The gate sends exactly those queries to the threads.
//!
//! The process runs the Tokio workers, one thread per open SQLite connection (at most
//! the sum of the SQLite pools' `max_size`; parked while the connection's queries run
//! inline), and whatever else the application starts, however heavy the load.
//!
//! Outside any runtime (a plain thread, `futures::executor::block_on`) a query runs on
//! the calling thread: nothing else is scheduled there.
//!
//! Yielding: awaiting a query that ran inline spends the task's Tokio budget, as
//! awaiting the thread's answer does, so a loop of short queries yields to the worker's
//! other tasks now and then.
//!
//! Cancellation: a query that runs inline is finished before its future exists. A
//! query future dropped while its query runs on the thread waits, in the drop, for
//! that one statement to finish. The connection is shared with the running query
//! (diesel-async keeps it in an `Arc<Mutex<_>>`), and handing it back to the pool
//! while shared would make diesel-async panic on its next use. A panic inside a query
//! is returned as an error.

use std::error::Error;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use diesel_async::sync_connection_wrapper::SpawnBlocking;
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::oneshot;

use super::gate::Watched;

/// What a query that could not run reports (diesel-async turns it into a
/// `DatabaseError(UnableToSendCommand, ..)`).
type TaskError = Box<dyn Error + Send + Sync + 'static>;

/// A query for a connection's thread.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// The name of every connection's thread, as `top -H` and `/proc/<pid>/task/*/comm`
/// show it.
pub const THREAD_NAME: &str = "keyroute-sqlite";

/// Runs each query of one SQLite connection on the calling worker when its file's gate
/// allows, and on that connection's own thread otherwise (see the module docs); every
/// query on the thread for a connection keyroute did not open. diesel-async makes one
/// per connection.
#[derive(Default)]
pub struct ConnectionThread {
    /// The thread's mailbox and the thread, to wake it; `None` until the first query
    /// starts it.
    thread: Option<(Arc<Mailbox>, std::thread::Thread)>,
    /// The connection's standing with its file's gate, which says when a query may run
    /// on the calling worker instead; `None` (every query on the thread) for a
    /// connection keyroute did not open itself.
    watched: Option<Arc<Watched>>,
}

/// Where a connection's queries wait for its thread.
///
/// Not a channel: a connection has one query out at a time (diesel-async holds it
/// while the query runs), so a queue under a lock the two sides rarely contend, and
/// the thread parked while it is empty, is all it takes. Per query that costs one
/// wake-up (`futex`) when the thread sleeps, and none when it is still awake.
/// `std::sync::mpsc` also registered the sleeping receiver under a second lock, which
/// the two sides did contend. With it (and a notify per query, see [`Signal`]) the
/// HTTP benchmark's `open` mode on SQLite made 3.9 `futex` calls per request against
/// 2.2 for plain pools on Tokio's blocking pool; with this mailbox, 2.3-2.5 against
/// 2.2-2.4 (BENCHMARKS.md, "Over HTTP").
#[derive(Default)]
struct Mailbox {
    state: Mutex<MailboxState>,
}

#[derive(Default)]
struct MailboxState {
    jobs: std::collections::VecDeque<Job>,
    /// Set when the connection closes: the thread ends once its jobs are done.
    closed: bool,
    /// Whether a thread serves the mailbox (cleared as it ends, however it ends).
    running: bool,
}

impl Mailbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, MailboxState> {
        // Jobs run outside the lock and catch their panics; the state stays whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The thread's loop: runs jobs in order, parks while there are none, ends once
    /// the connection has closed and nothing is left.
    fn serve(&self) {
        /// Marks the mailbox unserved when the thread ends, even by a panic.
        struct Ending<'a>(&'a Mailbox);
        impl Drop for Ending<'_> {
            fn drop(&mut self) {
                self.0.lock().running = false;
            }
        }
        let _ending = Ending(self);
        loop {
            let job = {
                let mut state = self.lock();
                match state.jobs.pop_front() {
                    Some(job) => job,
                    None if state.closed => return,
                    None => {
                        drop(state);
                        // A wake-up that came before this park is kept as a token:
                        // the park returns at once and the loop looks again.
                        std::thread::park();
                        continue;
                    }
                }
            };
            job();
        }
    }
}

impl std::fmt::Debug for ConnectionThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionThread")
            .field("started", &self.thread.is_some())
            .finish()
    }
}

impl ConnectionThread {
    /// Makes this the executor of a connection keyroute opened: its queries run on the
    /// calling worker while `watched`'s gate allows, on the connection's thread
    /// otherwise.
    pub(crate) fn gate(&mut self, watched: Arc<Watched>) {
        self.watched = Some(watched);
    }

    /// Runs `task` on the connection's thread, whatever the gate says (opening the
    /// connection: file I/O, before any gate applies).
    pub(crate) fn on_thread<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> Pin<Box<dyn Future<Output = Result<R, TaskError>> + Send + 'a>>
    where
        R: Send + 'static,
    {
        let finished = Arc::new(Finished::default());
        let (answer, answered) = oneshot::channel();
        let job = Query {
            task,
            answer,
            _signal: Signal(Arc::clone(&finished)),
        };
        match self.send(Box::new(move || job.run())) {
            Ok(()) => Box::pin(Answer {
                answered,
                finished: Some(finished),
            }),
            Err(error) => Box::pin(std::future::ready(Err(error))),
        }
    }

    /// Hands `job` to the connection's thread, starting it on the first query and again
    /// if it has gone.
    fn send(&mut self, job: Job) -> Result<(), TaskError> {
        if let Some((mailbox, thread)) = &self.thread {
            let mut state = mailbox.lock();
            if state.running {
                state.jobs.push_back(job);
                drop(state);
                thread.unpark();
                return Ok(());
            }
        }
        let mailbox = Arc::new(Mailbox::default());
        {
            let mut state = mailbox.lock();
            state.jobs.push_back(job);
            state.running = true;
        }
        let served = Arc::clone(&mailbox);
        let started = std::thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(move || served.serve())
            .map_err(|e| format!("cannot start a thread for a SQLite connection: {e}"))?;
        self.thread = Some((mailbox, started.thread().clone()));
        Ok(())
    }
}

impl Drop for ConnectionThread {
    fn drop(&mut self) {
        if let Some(watched) = &self.watched {
            watched.close();
        }
        // The thread finishes what it was given (a query dropped midway is waited for
        // by its caller), then ends.
        if let Some((mailbox, thread)) = self.thread.take() {
            mailbox.lock().closed = true;
            thread.unpark();
        }
    }
}

impl SpawnBlocking for ConnectionThread {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> Pin<Box<dyn Future<Output = Result<R, TaskError>> + Send + 'a>>
    where
        R: Send + 'static,
    {
        let Ok(runtime) = Handle::try_current() else {
            return Box::pin(std::future::ready(run(task)));
        };
        if let Some(watched) = &self.watched
            && runtime.runtime_flavor() == RuntimeFlavor::MultiThread
        {
            // Read only for a query that may run inline: it decides, then times it.
            let started = Instant::now();
            if watched.gate.inline_at(started) {
                let answer = run(task);
                watched.gate.ran_inline(started.elapsed());
                // The answer is ready, but awaiting it spends the task's Tokio budget as
                // awaiting the thread's did: a loop of short queries still yields to the
                // worker's other tasks every so often instead of holding the worker.
                return Box::pin(tokio::task::coop::cooperative(std::future::ready(answer)));
            }
        }
        self.on_thread(task)
    }

    fn get_runtime() -> Self {
        Self::default()
    }
}

/// Runs `task`, turning a panic into an error.
fn run<R>(task: impl FnOnce() -> R) -> Result<R, TaskError> {
    catch_unwind(AssertUnwindSafe(task)).map_err(|_| "a SQLite query panicked".into())
}

/// A query on its way to the connection's thread. Fields drop in order, so an unrun
/// task (and the connection it holds) is gone before its signal fires.
struct Query<F, R> {
    task: F,
    answer: oneshot::Sender<Result<R, TaskError>>,
    _signal: Signal,
}

impl<F: FnOnce() -> R, R> Query<F, R> {
    fn run(self) {
        let Query {
            task,
            answer,
            _signal,
        } = self;
        // The task (and with it the connection's `Arc`) is consumed here, before
        // `_signal` drops at the end of this function. A caller that stopped waiting
        // has dropped its receiver: nothing to tell it.
        let _ = answer.send(run(task));
    }
}

/// The caller's side of a [`Query`].
struct Answer<R> {
    answered: oneshot::Receiver<Result<R, TaskError>>,
    /// Set until the answer has arrived; a drop before then waits on it.
    finished: Option<Arc<Finished>>,
}

impl<R> Future for Answer<R> {
    type Output = Result<R, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let answer = match Pin::new(&mut this.answered).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(answer)) => answer,
            Poll::Ready(Err(_)) => Err("a SQLite connection's thread dropped a query".into()),
        };
        this.finished = None;
        Poll::Ready(answer)
    }
}

impl<R> Drop for Answer<R> {
    fn drop(&mut self) {
        let Some(finished) = self.finished.take() else {
            return;
        };
        // The query holds the connection; see the module docs for why we wait. On the
        // multi-threaded runtime the worker's other tasks move to another thread
        // meanwhile; a current-thread runtime has nowhere to move them.
        let on_multi_thread =
            Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
        if on_multi_thread {
            tokio::task::block_in_place(|| finished.wait());
        } else {
            finished.wait();
        }
    }
}

/// Set once a query's task has run or been dropped unrun.
#[derive(Default)]
struct Finished {
    state: Mutex<FinishState>,
    changed: Condvar,
}

/// Whether the task is done, and whether a dropped [`Answer`] waits for that.
#[derive(Default)]
struct FinishState {
    done: bool,
    waiting: bool,
}

impl Finished {
    fn wait(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.waiting = true;
        while !state.done {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Marks its [`Finished`] when dropped: after the task ran, or with the task when the
/// thread is gone before running it.
struct Signal(Arc<Finished>);

impl Drop for Signal {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.done = true;
        // Only a dropped query's caller waits. A notify with nobody waiting still costs
        // a `futex` system call, on every query (std's condition variable makes it
        // unconditionally); the flag, read under the same lock, saves it.
        if state.waiting {
            self.0.changed.notify_all();
        }
    }
}
