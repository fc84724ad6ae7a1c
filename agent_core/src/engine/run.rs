//! The IO-free driver of a strategy: hands out calls, takes results back, keeps the budget and
//! the trace, and finally yields the [`Answer`].
//!
//! The caller loops: `poll()` gives a batch of [`CallSpec`]s; it performs them (concurrently,
//! in any order) and reports each with `complete` or `fail`; then it polls again, until
//! `poll()` says [`Poll::Done`]. Nothing here waits, sleeps or touches the network.
//!
//! Budgets (`max_calls`, `max_total_tokens`) hold across the whole strategy:
//! - a batch is cut to the calls left; each call's `max_tokens` is capped at its share of the
//!   tokens left (prompt tokens are only known afterwards, so the token budget is checked again
//!   before every batch);
//! - when the budget runs out before the strategy is done, the task ends with the strategy's
//!   best answer so far and `budget_exhausted = true`, or, when there is none yet, with a
//!   `budget_exceeded` error.

use std::collections::BTreeMap;

use crate::engine::answer::{Answer, Step};
use crate::engine::extract::normalize;
use crate::engine::sampling::StopReason;
use crate::engine::strategies::{self, Final, Planned, Returned, Strategy, Transition};
use crate::engine::task::estimate_prompt_tokens;
use crate::engine::task::Task;
use crate::error::{Error, ErrorKind};
use crate::types::{Completion, CompletionRequest, Usage};

/// One call the caller must make.
#[derive(Debug, Clone, PartialEq)]
pub struct CallSpec {
    /// Unique within the run; report the result under this id.
    pub id: u64,
    pub purpose: String,
    pub request: CompletionRequest,
    /// The reply is (or gives) the task's answer: a driver may stream it to its client.
    pub is_final: bool,
}

/// When a call ran, as the driver measured it: the engine keeps no clock of its own.
///
/// A bare `f64` is the latency alone (the start unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timing {
    /// How long the call took, in milliseconds.
    pub latency_ms: f64,
    /// When it started, in milliseconds from the start of the run on the driver's clock.
    pub started_ms: Option<f64>,
}

impl Timing {
    /// A call that started `started_ms` into the run and took `latency_ms`.
    pub fn new(started_ms: f64, latency_ms: f64) -> Self {
        Self {
            latency_ms,
            started_ms: Some(started_ms),
        }
    }
}

impl From<f64> for Timing {
    fn from(latency_ms: f64) -> Self {
        Self {
            latency_ms,
            started_ms: None,
        }
    }
}

/// What the run needs next.
#[derive(Debug, Clone, PartialEq)]
// One short-lived value per poll: boxing the answer would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Poll {
    /// Make these calls and report each result.
    Calls(Vec<CallSpec>),
    /// Results of earlier calls are still outstanding.
    Waiting,
    /// Finished: the answer or why there is none.
    Done(Result<Answer, Error>),
}

// One per run; the finished state's size is paid once, not per call.
#[allow(clippy::large_enum_variant)]
enum State {
    /// The strategy's next calls, not yet handed out.
    Ready(Vec<Planned>),
    /// Calls handed out; results collected in plan order.
    InFlight {
        batch: Vec<InFlightCall>,
    },
    Done(Result<Answer, Error>),
}

struct InFlightCall {
    id: u64,
    step: usize,
    request: CompletionRequest,
    is_final: bool,
    /// `None` until the caller reports it.
    result: Option<Result<Completion, Error>>,
}

/// What ended a task before its strategy was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exhausted {
    MaxCalls,
    MaxTotalTokens,
    MaxCost,
    Deadline,
}

impl Exhausted {
    fn name(self) -> &'static str {
        match self {
            Exhausted::MaxCalls => "max_calls",
            Exhausted::MaxTotalTokens => "max_total_tokens",
            Exhausted::MaxCost => "max_cost_usd",
            Exhausted::Deadline => "deadline",
        }
    }
}

pub struct Run {
    task: Task,
    strategy: Box<dyn Strategy>,
    state: State,
    /// One step per call handed out; a call's id is its step's index.
    steps: Vec<Step>,
    /// Set when a batch was cut to fit the budget.
    truncated: bool,
}

impl Run {
    /// Starts a run; an invalid task yields a run that is already done with the error.
    pub fn new(task: Task) -> Self {
        let mut strategy = strategies::build(&task);
        let state = match task.validate() {
            Ok(()) => State::Ready(strategy.start()),
            Err(error) => State::Done(Err(error)),
        };
        Self {
            task,
            strategy,
            state,
            steps: Vec::new(),
            truncated: false,
        }
    }

    pub fn task(&self) -> &Task {
        &self.task
    }

    /// The trace so far: every call handed out, answered or not.
    pub fn trace(&self) -> &[Step] {
        &self.steps
    }

    /// Tokens spent by the calls answered so far.
    pub fn usage(&self) -> Usage {
        let mut usage = Usage::default();
        for step in &self.steps {
            usage += step.usage;
        }
        usage
    }

    fn calls(&self) -> u32 {
        self.steps.len() as u32
    }

    /// How many calls the task will make if nothing stops it early (the budget included).
    pub fn planned_calls(&self) -> u32 {
        let planned = self.strategy.planned_calls();
        self.task.max_calls.map_or(planned, |max| planned.min(max))
    }

    /// One step of the trace (a call handed out), by call id.
    pub fn step(&self, id: u64) -> Option<&Step> {
        self.steps.get(id as usize)
    }

    /// The running vote of a voting strategy: answers read so far (normalised, as the vote
    /// counts them) and how often each came; `None` for strategies that do not vote.
    pub fn tally(&self) -> Option<BTreeMap<String, u32>> {
        if !self.strategy.votes() {
            return None;
        }
        let mut votes = BTreeMap::new();
        for candidate in self.steps.iter().filter_map(|s| s.candidate.as_deref()) {
            *votes.entry(normalize(candidate)).or_default() += 1;
        }
        Some(votes)
    }

    pub fn poll(&mut self) -> Poll {
        if let State::Ready(planned) = &mut self.state {
            let planned = std::mem::take(planned);
            self.state = self.issue(planned);
            if let State::InFlight { batch } = &self.state {
                let specs = batch
                    .iter()
                    .map(|call| CallSpec {
                        id: call.id,
                        purpose: self.steps[call.step].purpose.clone(),
                        request: call.request.clone(),
                        is_final: call.is_final,
                    })
                    .collect();
                return Poll::Calls(specs);
            }
        }
        match &self.state {
            State::Done(result) => Poll::Done(result.clone()),
            _ => Poll::Waiting,
        }
    }

    /// Reports a successful call. `timing` is its latency, or a [`Timing`] with its start too;
    /// `provider` names who served it when the completion does not.
    pub fn complete(
        &mut self,
        id: u64,
        completion: Completion,
        timing: impl Into<Timing>,
        provider: Option<String>,
        note: Option<String>,
    ) -> Result<(), Error> {
        let step = self.record(id, timing.into())?;
        let preview = self
            .strategy
            .preview(&self.steps[step].purpose, &completion);
        let s = &mut self.steps[step];
        s.provider = completion.provider.clone().or(provider);
        s.model = Some(completion.model.clone());
        s.usage = completion.usage;
        s.output = Some(completion.text.clone());
        // Read now, so progress shows each call's answer before its batch is done.
        s.candidate = preview;
        // The provider's own note wins: it knows how it served the call.
        s.note = completion.note.clone().or(note);
        self.store(id, Ok(completion));
        Ok(())
    }

    /// Reports a failed call (`timing` as for [`Run::complete`]).
    pub fn fail(
        &mut self,
        id: u64,
        error: Error,
        timing: impl Into<Timing>,
        provider: Option<String>,
    ) -> Result<(), Error> {
        let step = self.record(id, timing.into())?;
        let s = &mut self.steps[step];
        s.provider = provider;
        s.error = Some(error.kind.code().to_string());
        s.error_message = Some(error.message.clone());
        self.store(id, Err(error));
        Ok(())
    }

    /// Applies the budget to the strategy's plan and opens trace steps for the calls.
    fn issue(&mut self, mut planned: Vec<Planned>) -> State {
        if planned.is_empty() {
            let error = Error::new(ErrorKind::Provider, "the strategy planned no calls");
            return State::Done(Err(error));
        }
        let calls_left = self
            .task
            .max_calls
            .map(|max| max.saturating_sub(self.calls()));
        let used = self.used_tokens();
        let tokens_left = self
            .task
            .max_total_tokens
            .map(|max| max.saturating_sub(used));
        if calls_left == Some(0) {
            return State::Done(self.out_of_budget(Exhausted::MaxCalls));
        }
        if tokens_left == Some(0) {
            return State::Done(self.out_of_budget(Exhausted::MaxTotalTokens));
        }
        if let Some(left) = calls_left {
            if planned.len() > left as usize {
                planned.truncate(left as usize);
                self.truncated = true;
            }
        }
        // A share never exceeds one call's limit, so every request the engine makes is one
        // that `CompletionRequest` itself would accept.
        let share = tokens_left
            .map(|left| (left / planned.len() as u64).clamp(1, crate::limits::MAX_TOKENS.maximum));
        let mut max_tokens = match (self.task.max_tokens, share) {
            (Some(asked), Some(share)) => Some(asked.min(share)),
            (asked, share) => asked.or(share),
        };
        // A cost budget reserves the worst case of the batch before it goes out: each call's
        // prompt (estimated) plus its max_tokens at the output price must fit what is left, so
        // max_tokens is capped at the share of the money left; when not one token fits, the
        // task ends with its best answer so far.
        if let Some(cap) = self.affordable_tokens(&planned) {
            if cap == 0 {
                return State::Done(self.out_of_budget(Exhausted::MaxCost));
            }
            max_tokens = Some(max_tokens.map_or(cap, |asked| asked.min(cap)));
        }
        let mut batch = Vec::with_capacity(planned.len());
        for plan in planned {
            let request = CompletionRequest {
                messages: plan.messages,
                model: self.task.model.clone(),
                temperature: plan.temperature.or(self.task.temperature),
                max_tokens,
                stop: self.task.stop.clone(),
                extra: self.task.extra.clone(),
            };
            let step = self.steps.len();
            let id = step as u64;
            self.steps.push(Step {
                index: step,
                purpose: plan.purpose,
                provider: None,
                model: request.model.clone(),
                started_ms: None,
                latency_ms: 0.0,
                usage: Default::default(),
                output: None,
                candidate: None,
                error: None,
                error_message: None,
                note: None,
            });
            batch.push(InFlightCall {
                id,
                step,
                request,
                is_final: plan.is_final,
                result: None,
            });
        }
        State::InFlight { batch }
    }

    fn out_of_budget(&self, why: Exhausted) -> Result<Answer, Error> {
        match self.strategy.best_so_far() {
            Some(best) => Ok(self.answer(best, Some(why))),
            None if why == Exhausted::Deadline => Err(Error::new(
                ErrorKind::DeadlineExceeded,
                format!(
                    "the task's deadline passed before it had an answer ({} calls made)",
                    self.calls()
                ),
            )),
            None => Err(Error::new(
                ErrorKind::BudgetExceeded,
                format!(
                    "the task used its budget ({} calls, {} tokens) before it had an answer",
                    self.calls(),
                    self.used_tokens()
                ),
            )),
        }
    }

    /// The task's deadline passed: the calls still out are recorded as cancelled and the task
    /// ends now, with the strategy's best answer so far (`budget_exhausted`, reason
    /// `deadline`), or `deadline_exceeded` when there is none. A finished run is unchanged.
    pub fn expire(&mut self) -> Result<Answer, Error> {
        if let State::Done(result) = &self.state {
            return result.clone();
        }
        if let State::InFlight { batch } = &mut self.state {
            let batch = std::mem::take(batch);
            let mut answered = Vec::new();
            for call in batch {
                match call.result {
                    Some(result) => answered.push(Returned {
                        step: call.step,
                        result,
                        candidate: None,
                    }),
                    None => {
                        let step = &mut self.steps[call.step];
                        step.error = Some(ErrorKind::DeadlineExceeded.code().to_string());
                        step.error_message =
                            Some("cancelled: the task's deadline passed".to_string());
                    }
                }
            }
            // The calls that did answer count (a vote's samples so far): the strategy reads
            // them, and what it would do next is moot.
            if !answered.is_empty() {
                let _ = self.strategy.on_results(&mut answered);
                for r in answered {
                    self.steps[r.step].candidate = r.candidate;
                }
            }
        }
        let result = self.out_of_budget(Exhausted::Deadline);
        self.state = State::Done(result.clone());
        result
    }

    fn used_tokens(&self) -> u64 {
        self.usage().total()
    }

    /// Dollars spent so far at the task's prices (`None` without prices).
    pub fn spent_usd(&self) -> Option<f64> {
        let prices = self.task.prices()?;
        Some(prices.cost(&self.usage()))
    }

    /// With a cost budget: the most output tokens each planned call may have so that the
    /// whole batch's worst case fits the money left (0: not even one).
    fn affordable_tokens(&self, planned: &[Planned]) -> Option<u64> {
        let budget = self.task.max_cost_usd?;
        let prices = self.task.prices()?;
        let left = budget - prices.cost(&self.usage());
        let per_call = left / planned.len() as f64;
        let prompt_cost = planned
            .iter()
            .map(|plan| prices.input_cost(estimate_prompt_tokens(&plan.messages)))
            .fold(0.0, f64::max);
        let room = per_call - prompt_cost;
        if room <= 0.0 {
            return Some(0);
        }
        if prices.output <= 0.0 {
            return Some(crate::limits::MAX_TOKENS.maximum);
        }
        let tokens = (room / (prices.output / 1e6)).floor();
        Some((tokens as u64).min(crate::limits::MAX_TOKENS.maximum))
    }

    /// Finds the in-flight call `id`, sets its timing and returns its trace step.
    fn record(&mut self, id: u64, timing: Timing) -> Result<usize, Error> {
        let State::InFlight { batch } = &self.state else {
            return Err(unknown_call(id));
        };
        let Some(call) = batch
            .iter()
            .find(|call| call.id == id && call.result.is_none())
        else {
            return Err(unknown_call(id));
        };
        let step = call.step;
        self.steps[step].latency_ms = timing.latency_ms;
        self.steps[step].started_ms = timing.started_ms;
        Ok(step)
    }

    /// Stores a result; once the whole batch is in, the strategy decides what comes next.
    fn store(&mut self, id: u64, result: Result<Completion, Error>) {
        let State::InFlight { batch } = &mut self.state else {
            return;
        };
        if let Some(call) = batch.iter_mut().find(|call| call.id == id) {
            call.result = Some(result);
        }
        if batch.iter().any(|call| call.result.is_none()) {
            return;
        }
        let mut returned: Vec<Returned> = std::mem::take(batch)
            .into_iter()
            .filter_map(|call| {
                let result = call.result?;
                Some(Returned {
                    step: call.step,
                    result,
                    candidate: None,
                })
            })
            .collect();
        let transition = self.strategy.on_results(&mut returned);
        for r in returned {
            self.steps[r.step].candidate = r.candidate;
        }
        self.state = match transition {
            Transition::Calls(planned) => State::Ready(planned),
            Transition::Finish(Ok(best)) => {
                let over = self
                    .task
                    .max_total_tokens
                    .is_some_and(|max| self.used_tokens() > max);
                let over_cost = match (self.task.max_cost_usd, self.spent_usd()) {
                    (Some(max), Some(spent)) => spent > max,
                    _ => false,
                };
                let why = if self.truncated {
                    Some(Exhausted::MaxCalls)
                } else if over {
                    Some(Exhausted::MaxTotalTokens)
                } else if over_cost {
                    Some(Exhausted::MaxCost)
                } else {
                    None
                };
                State::Done(Ok(self.answer(best, why)))
            }
            Transition::Finish(Err(error)) => State::Done(Err(error)),
        };
    }

    fn answer(&self, best: Final, exhausted: Option<Exhausted>) -> Answer {
        let source = &self.steps[best.step];
        let mut sampling = best.sampling;
        if let (Some(sampling), Some(why)) = (sampling.as_mut(), exhausted) {
            sampling.stopped = if why == Exhausted::Deadline {
                StopReason::Deadline.name()
            } else {
                StopReason::Budget.name()
            };
        }
        Answer {
            sampling,
            budget_reason: exhausted.map(Exhausted::name),
            text: best.text,
            strategy: self.task.strategy.name(),
            confidence: best.confidence,
            votes: best.votes,
            usage: self.usage(),
            calls: self.calls(),
            steps: self.steps.clone(),
            model: source.model.clone(),
            provider: source.provider.clone(),
            budget_exhausted: exhausted.is_some(),
        }
    }
}

fn unknown_call(id: u64) -> Error {
    Error::invalid(format!("call {id} is not awaiting a result"))
}

/// Drives a run to the end with a blocking, Rust-native provider (tests, benchmarks, `echo`).
pub fn drive(
    task: Task,
    provider: &dyn crate::provider::CompletionProvider,
) -> Result<Answer, Error> {
    let mut run = Run::new(task);
    loop {
        match run.poll() {
            Poll::Calls(calls) => {
                for call in calls {
                    match provider.complete(&call.request) {
                        Ok(c) => {
                            run.complete(call.id, c, 0.0, Some(provider.name().into()), None)?
                        }
                        Err(e) => run.fail(call.id, e, 0.0, Some(provider.name().into()))?,
                    }
                }
            }
            Poll::Waiting => {
                return Err(Error::new(
                    ErrorKind::Provider,
                    "the run waits on calls never made",
                ))
            }
            Poll::Done(result) => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::task::StrategyKind;
    use crate::types::{Message, Usage};

    /// A strategy with no intermediate answer: it plans a second batch and only the second
    /// batch yields an answer (the shape of plan-then-solve strategies).
    struct TwoPhase;

    impl Strategy for TwoPhase {
        fn start(&mut self) -> Vec<Planned> {
            vec![Planned {
                purpose: "plan".into(),
                messages: vec![Message::user("p")],
                temperature: None,
                is_final: false,
            }]
        }
        fn on_results(&mut self, results: &mut [Returned]) -> Transition {
            if results[0].step == 0 {
                Transition::Calls(vec![Planned {
                    purpose: "solve".into(),
                    messages: vec![Message::user("s")],
                    temperature: None,
                    is_final: true,
                }])
            } else {
                Transition::Finish(Ok(Final {
                    text: "done".into(),
                    confidence: None,
                    votes: None,
                    step: 1,
                    sampling: None,
                }))
            }
        }
        fn best_so_far(&self) -> Option<Final> {
            None
        }
        fn preview(&self, _purpose: &str, _completion: &Completion) -> Option<String> {
            None
        }
        fn planned_calls(&self) -> u32 {
            2
        }
    }

    fn completion(tokens: u64) -> Completion {
        Completion {
            text: "x".into(),
            model: "m".into(),
            finish_reason: "stop".into(),
            usage: Usage {
                prompt_tokens: tokens,
                completion_tokens: 0,
            },
            provider: None,
            note: None,
        }
    }

    fn two_phase(task: Task) -> Run {
        Run {
            strategy: Box::new(TwoPhase),
            state: State::Ready(TwoPhase.start()),
            ..Run::new(task)
        }
    }

    #[test]
    fn budget_gone_before_any_answer_is_budget_exceeded() {
        let mut run = two_phase(Task {
            max_calls: Some(1),
            ..Task::new("q", StrategyKind::Direct)
        });
        let Poll::Calls(calls) = run.poll() else {
            panic!("expected calls")
        };
        run.complete(calls[0].id, completion(5), 1.0, None, None)
            .unwrap();
        let Poll::Done(Err(error)) = run.poll() else {
            panic!("expected budget_exceeded")
        };
        assert_eq!(error.kind, ErrorKind::BudgetExceeded);
        assert!(error.message.contains("1 calls"), "{}", error.message);
    }

    #[test]
    fn token_budget_gone_before_any_answer_is_budget_exceeded() {
        let mut run = two_phase(Task {
            max_total_tokens: Some(5),
            ..Task::new("q", StrategyKind::Direct)
        });
        let Poll::Calls(calls) = run.poll() else {
            panic!("expected calls")
        };
        run.complete(calls[0].id, completion(5), 1.0, None, None)
            .unwrap();
        assert!(matches!(run.poll(), Poll::Done(Err(e)) if e.kind == ErrorKind::BudgetExceeded));
    }

    #[test]
    fn within_budget_the_second_phase_runs() {
        let mut run = two_phase(Task {
            max_calls: Some(2),
            ..Task::new("q", StrategyKind::Direct)
        });
        for _ in 0..2 {
            let Poll::Calls(calls) = run.poll() else {
                panic!("expected calls")
            };
            run.complete(calls[0].id, completion(1), 1.0, None, None)
                .unwrap();
        }
        let Poll::Done(Ok(answer)) = run.poll() else {
            panic!("expected an answer")
        };
        assert_eq!(
            (answer.text.as_str(), answer.budget_exhausted),
            ("done", false)
        );
    }
}
