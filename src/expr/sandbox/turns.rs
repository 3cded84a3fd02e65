//! Whose turn it is to get the next free worker, when evaluations wait for one.
//!
//! Waiting evaluations are grouped by queue (a run, a Flow). The next free worker goes to
//! the queue with the fewest evaluations running now; among those, round robin: to the one
//! served longest ago (a new queue first), then to the one whose first waiting evaluation
//! came earliest. Within a queue, first come first served. So however many hostile
//! expressions one queue has waiting, another queue's evaluation waits only for the first
//! worker to come free.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// One waiting evaluation. Numbers grow with arrival, so they also order the queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Ticket {
    queue: Arc<str>,
    number: u64,
}

impl Ticket {
    pub(super) fn queue(&self) -> &Arc<str> {
        &self.queue
    }
}

#[derive(Debug, Default)]
pub(super) struct Turns {
    queues: HashMap<Arc<str>, Queue>,
    issued: u64,
    /// Workers handed out so far: orders the queues by when they were last served.
    served: u64,
    waiting: usize,
}

#[derive(Debug, Default)]
struct Queue {
    running: usize,
    waiting: VecDeque<u64>,
    /// The value of `served` when this queue last got a worker; 0: never.
    last_served: u64,
}

impl Queue {
    fn idle(&self) -> bool {
        self.running == 0 && self.waiting.is_empty()
    }
}

impl Turns {
    /// Queues an evaluation of `queue`.
    pub(super) fn join(&mut self, queue: &Arc<str>) -> Ticket {
        self.issued += 1;
        self.waiting += 1;
        self.queues
            .entry(queue.clone())
            .or_default()
            .waiting
            .push_back(self.issued);
        Ticket {
            queue: queue.clone(),
            number: self.issued,
        }
    }

    /// The evaluation that gets the next free worker.
    pub(super) fn next(&self) -> Option<Ticket> {
        self.queues
            .iter()
            .filter_map(|(name, queue)| {
                let first = *queue.waiting.front()?;
                Some((queue.running, queue.last_served, first, name))
            })
            .min()
            .map(|(_, _, number, name)| Ticket {
                queue: name.clone(),
                number,
            })
    }

    /// `ticket` got a worker: it runs now.
    pub(super) fn start(&mut self, ticket: &Ticket) {
        if self.withdraw(ticket) {
            self.served += 1;
            let served = self.served;
            let queue = self.queue(ticket.queue());
            queue.running += 1;
            queue.last_served = served;
        }
    }

    /// `ticket` stopped waiting without a worker.
    pub(super) fn leave(&mut self, ticket: &Ticket) {
        self.withdraw(ticket);
        self.forget_idle();
    }

    /// An evaluation of `queue` that [`Turns::start`]ed gave its worker back.
    pub(super) fn finish(&mut self, queue: &Arc<str>) {
        let entry = self.queue(queue);
        entry.running = entry.running.saturating_sub(1);
        self.forget_idle();
    }

    /// Evaluations waiting for a worker, of all queues.
    pub(super) fn waiting(&self) -> usize {
        self.waiting
    }

    fn withdraw(&mut self, ticket: &Ticket) -> bool {
        let waiting = &mut self.queue(ticket.queue()).waiting;
        let Some(at) = waiting.iter().position(|&n| n == ticket.number) else {
            return false;
        };
        waiting.remove(at);
        self.waiting -= 1;
        true
    }

    fn queue(&mut self, queue: &Arc<str>) -> &mut Queue {
        self.queues.entry(queue.clone()).or_default()
    }

    /// Drops the queues with nothing running or waiting that were served before every
    /// queue still in use: back, they rank as new queues, which is where they rank anyway.
    /// So runs long gone leave nothing, and a run that evaluates one expression at a time
    /// keeps its place in the round.
    fn forget_idle(&mut self) {
        let oldest_in_use = self
            .queues
            .values()
            .filter(|q| !q.idle())
            .map(|q| q.last_served)
            .min();
        self.queues
            .retain(|_, q| !q.idle() || oldest_in_use.is_some_and(|o| q.last_served >= o));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(queue: &str) -> Arc<str> {
        Arc::from(queue)
    }

    /// Gives `workers` free workers out in turn and names the queues served, in order.
    fn serve(turns: &mut Turns, workers: usize) -> Vec<String> {
        (0..workers)
            .map_while(|_| {
                let ticket = turns.next()?;
                turns.start(&ticket);
                Some(ticket.queue().to_string())
            })
            .collect()
    }

    #[test]
    fn a_queue_filling_the_workers_does_not_delay_a_newcomer() {
        let mut turns = Turns::default();
        let (a, b) = (name("run-a"), name("run-b"));
        for _ in 0..10 {
            turns.join(&a);
        }
        assert_eq!(serve(&mut turns, 2), ["run-a", "run-a"]);
        turns.join(&b);
        assert_eq!(turns.waiting(), 9);
        // One of a's evaluations ends: b, with none running, is next, before a's older ones.
        turns.finish(&a);
        assert_eq!(serve(&mut turns, 1), ["run-b"]);
        turns.finish(&a);
        assert_eq!(serve(&mut turns, 1), ["run-a"]);
    }

    #[test]
    fn a_queue_served_last_waits_for_the_others() {
        let mut turns = Turns::default();
        let (a, b) = (name("run-a"), name("run-b"));
        // a evaluates one expression at a time, each taking the only worker.
        turns.join(&a);
        assert_eq!(serve(&mut turns, 1), ["run-a"]);
        turns.join(&a);
        turns.join(&b);
        turns.finish(&a);
        // Both run nothing now; a was served, b never: b goes first.
        assert_eq!(serve(&mut turns, 1), ["run-b"]);
        turns.finish(&b);
        assert_eq!(serve(&mut turns, 1), ["run-a"]);
    }

    #[test]
    fn queues_running_alike_take_turns_by_arrival() {
        let mut turns = Turns::default();
        let (a, b, c) = (name("a"), name("b"), name("c"));
        for queue in [&a, &a, &a, &b, &b, &c] {
            turns.join(queue);
        }
        assert_eq!(serve(&mut turns, 6), ["a", "b", "c", "a", "b", "a"]);
        assert_eq!(turns.next(), None);
        assert_eq!(turns.waiting(), 0);
    }

    #[test]
    fn within_a_queue_first_come_first_served() {
        let mut turns = Turns::default();
        let a = name("a");
        let first = turns.join(&a);
        let second = turns.join(&a);
        assert_eq!(turns.next(), Some(first.clone()));
        turns.leave(&first);
        assert_eq!(turns.next(), Some(second));
    }

    #[test]
    fn finished_and_abandoned_queues_are_forgotten() {
        let mut turns = Turns::default();
        let (a, b) = (name("a"), name("b"));
        let ticket = turns.join(&a);
        turns.start(&ticket);
        turns.finish(&a);
        let gone = turns.join(&b);
        turns.leave(&gone);
        assert!(turns.queues.is_empty(), "{:?}", turns.queues);
        assert_eq!(turns.waiting(), 0);
    }
}
