//! Checks sent together: the [`ValkeyLimiter`](super::ValkeyLimiter)'s checks go
//! through a queue to one dispatcher task per limiter, which sends whatever is waiting
//! as one script call (at most [`MAX_BATCH`] checks, [`MAX_IN_FLIGHT`] calls at a
//! time). A lone check goes at once; under load, the checks that arrive while calls
//! are on their way share the next one, so the server runs one script and the network
//! carries one command for many requests, instead of one each. The script decides the
//! batch's checks one after another at one instant of the server's clock, exactly as
//! if each had come alone at that instant, so batching changes no decision.
//!
//! A caller that stops waiting (its `[limits] timeout` ran out) counts as a stall of
//! the connection, as a check cut short did before batching: whether it stopped while
//! queued or while its call was out.

use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{CHECK_LUA, Engine};
use crate::limits::EngineError;

/// Checks decided by one script call at most.
pub(super) const MAX_BATCH: usize = 64;
/// Script calls on their way at once; checks that arrive meanwhile wait and go together.
pub(super) const MAX_IN_FLIGHT: usize = 2;
/// Checks waiting for a call at most; beyond that a check fails at once (and the
/// limiter's breaker takes over), rather than queueing without bound behind a server
/// that does not answer.
const QUEUE: usize = 4096;

type Answer = Result<Vec<i64>, EngineError>;

/// One check waiting for its call: its keys, its arguments (its number of limits, its
/// cost, each limit's interval and tolerance), and where its answer goes.
struct Job {
    keys: Vec<String>,
    args: Vec<u64>,
    reply: oneshot::Sender<Answer>,
}

/// The queue to the dispatcher, started by the first check (on the runtime it runs
/// on) and again if that runtime has stopped.
#[derive(Default)]
pub(super) struct Batches {
    queue: RwLock<Option<mpsc::Sender<Job>>>,
}

impl Batches {
    /// The check script's answer for one check (`2 + 2 × limits` numbers), decided in
    /// whichever call it joins.
    pub(super) async fn check(
        &self,
        engine: &Arc<Engine>,
        keys: Vec<String>,
        args: Vec<u64>,
    ) -> Answer {
        let (reply, answer) = oneshot::channel();
        self.submit(engine, Job { keys, args, reply })?;
        answer.await.map_err(|_| {
            EngineError("the limits check was lost: the runtime sending it stopped".to_owned())
        })?
    }

    fn submit(&self, engine: &Arc<Engine>, job: Job) -> Result<(), EngineError> {
        let full = || {
            EngineError(format!(
                "{QUEUE} limit checks are already waiting for the server"
            ))
        };
        let job = match self
            .queue
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            Some(queue) => match queue.try_send(job) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(_)) => return Err(full()),
                Err(TrySendError::Closed(job)) => job,
            },
            None => job,
        };
        // No dispatcher yet, or its runtime stopped: start one on this runtime, unless
        // another check just did.
        let mut queue = self.queue.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(current) = queue.as_ref().filter(|q| !q.is_closed()) {
            return current.try_send(job).map_err(|_| full());
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            EngineError("the valkey limit engine needs a tokio runtime to send checks".to_owned())
        })?;
        let (sender, receiver) = mpsc::channel(QUEUE);
        sender.try_send(job).map_err(|_| full())?;
        runtime.spawn(dispatch(Arc::clone(engine), receiver));
        *queue = Some(sender);
        Ok(())
    }
}

/// The dispatcher: waits for a free call, then sends everything queued (up to
/// [`MAX_BATCH`]) as one. Ends when its limiter is dropped (the queue closes).
async fn dispatch(engine: Arc<Engine>, mut queue: mpsc::Receiver<Job>) {
    let calls = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        let Ok(permit) = Arc::clone(&calls).acquire_owned().await else {
            return;
        };
        let Some(first) = queue.recv().await else {
            return;
        };
        let mut jobs = Vec::with_capacity(queue.len().min(MAX_BATCH - 1) + 1);
        jobs.push(first);
        while jobs.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let engine = Arc::clone(&engine);
        tokio::spawn(async move {
            call(&engine, jobs).await;
            drop(permit);
        });
    }
}

/// One script call for `jobs`, each answered with its own part of the reply.
async fn call(engine: &Engine, jobs: Vec<Job>) {
    let mut waiting = Vec::with_capacity(jobs.len());
    for job in jobs {
        if job.reply.is_closed() {
            // Its caller gave up while it was queued: the server is slow.
            engine.gave_up();
        } else {
            waiting.push(job);
        }
    }
    if waiting.is_empty() {
        return;
    }
    let mut keys = Vec::with_capacity(waiting.iter().map(|j| j.keys.len()).sum());
    let mut args = Vec::with_capacity(1 + waiting.iter().map(|j| j.args.len()).sum::<usize>());
    args.push(waiting.len() as u64);
    let mut limits = Vec::with_capacity(waiting.len());
    for job in &mut waiting {
        limits.push(job.keys.len());
        keys.append(&mut job.keys);
        args.extend_from_slice(&job.args);
    }
    let reply = engine
        .run::<Vec<i64>>(&engine.check, CHECK_LUA, &keys, &args)
        .await;
    let mut rest = match &reply {
        Ok(numbers) => numbers.as_slice(),
        Err(_) => &[],
    };
    for (job, n) in waiting.into_iter().zip(limits) {
        let answer = match &reply {
            Err(error) => Err(error.clone()),
            Ok(_) => {
                // Each check's part: refused, retry_after, then two per limit. From a
                // short reply a check gets what is left, fewer numbers than its limits
                // need, which `verdict` refuses as a malformed answer.
                let len = n.saturating_mul(2).saturating_add(2).min(rest.len());
                let (part, tail) = rest.split_at(len);
                rest = tail;
                Ok(part.to_vec())
            }
        };
        if job.reply.send(answer).is_err() {
            // Its caller gave up while the call was out: the server is slow.
            engine.gave_up();
        }
    }
}
