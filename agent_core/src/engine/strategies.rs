//! The strategies: each plans calls, reads their results and decides what comes next.
//!
//! A strategy knows nothing of ids, budgets or traces; [`crate::engine::Run`] does that
//! bookkeeping for all of them, so each strategy is only its reasoning recipe.

use std::collections::BTreeMap;

use crate::engine::extract::{extract_answer, normalize};
use crate::engine::sampling::{decided, next_wave, winner_stands, Sampling, StopReason};
use crate::engine::task::{StrategyKind, Task, DEFAULT_SAMPLE_TEMPERATURE};
use crate::error::{Error, ErrorKind};
use crate::types::{Completion, Message};

/// The instruction that turns a plain prompt into a step-by-step one.
pub const COT_INSTRUCTIONS: &str = "Think through the problem step by step. Then give your final \
answer on its own last line, in the form \"Final answer: <answer>\".";

/// A critique that starts with this (case-insensitive) ends `refine` early.
pub const NO_ISSUES: &str = "NO ISSUES";

/// A call a strategy wants made.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub purpose: String,
    pub messages: Vec<Message>,
    /// Overrides the task's temperature for this call.
    pub temperature: Option<f64>,
    /// The reply is (or gives) the task's answer, so a driver may stream it to the client.
    pub is_final: bool,
}

/// The result of one planned call, handed back to the strategy in plan order.
#[derive(Debug)]
pub struct Returned {
    pub step: usize,
    pub result: Result<Completion, Error>,
    /// Filled in by the strategy: the answer it read from this call.
    pub candidate: Option<String>,
}

/// What the engine ends a strategy with.
#[derive(Debug, Clone, PartialEq)]
pub struct Final {
    pub text: String,
    pub confidence: Option<f64>,
    pub votes: Option<BTreeMap<String, u32>>,
    /// The trace step whose call produced the answer.
    pub step: usize,
    /// How a vote's samples were drawn (voting strategies).
    pub sampling: Option<Sampling>,
}

pub enum Transition {
    Calls(Vec<Planned>),
    Finish(Result<Final, Error>),
}

pub trait Strategy: Send + Sync {
    /// The first batch of calls.
    fn start(&mut self) -> Vec<Planned>;
    /// Takes a whole batch's results (in the order they were planned) and decides what's next.
    fn on_results(&mut self, results: &mut [Returned]) -> Transition;
    /// The best answer so far, used when the budget stops the strategy early.
    fn best_so_far(&self) -> Option<Final>;
    /// The answer one call's reply gives, read as soon as that call answers (progress
    /// events show it before the batch is done); `None` for calls that give none.
    fn preview(&self, purpose: &str, completion: &Completion) -> Option<String>;
    /// How many calls the whole strategy plans, if nothing stops it early.
    fn planned_calls(&self) -> u32;
    /// Whether the strategy votes over its calls' answers.
    fn votes(&self) -> bool {
        false
    }
}

pub fn build(task: &Task) -> Box<dyn Strategy> {
    match task.strategy {
        StrategyKind::Direct => Box::new(Single::new(task, false)),
        StrategyKind::Cot => Box::new(Single::new(task, true)),
        StrategyKind::SelfConsistency => Box::new(SelfConsistency::new(task)),
        StrategyKind::Refine => Box::new(Refine::new(task)),
    }
}

fn base_messages(system: Option<&str>, user: String) -> Vec<Message> {
    let mut messages = Vec::with_capacity(2);
    if let Some(system) = system {
        messages.push(Message::system(system));
    }
    messages.push(Message::user(user));
    messages
}

fn cot_system(task: &Task) -> String {
    match &task.system {
        Some(system) => format!("{system}\n\n{COT_INSTRUCTIONS}"),
        None => COT_INSTRUCTIONS.to_string(),
    }
}

// --- direct and cot ------------------------------------------------------------------------

/// `direct` (the reply is the answer) and `cot` (the answer is extracted from the reasoning).
struct Single {
    planned: Planned,
    extract: bool,
}

impl Single {
    fn new(task: &Task, extract: bool) -> Self {
        let system = if extract {
            Some(cot_system(task))
        } else {
            task.system.clone()
        };
        let purpose = if extract { "reason" } else { "answer" };
        Self {
            planned: Planned {
                purpose: purpose.into(),
                messages: base_messages(system.as_deref(), task.prompt.clone()),
                temperature: None,
                is_final: true,
            },
            extract,
        }
    }
}

impl Strategy for Single {
    fn start(&mut self) -> Vec<Planned> {
        vec![self.planned.clone()]
    }

    fn on_results(&mut self, results: &mut [Returned]) -> Transition {
        let Some(returned) = results.first_mut() else {
            return Transition::Finish(Err(no_results()));
        };
        match &returned.result {
            Ok(completion) => {
                let text = if self.extract {
                    extract_answer(&completion.text).value
                } else {
                    completion.text.trim().to_string()
                };
                returned.candidate = Some(text.clone());
                Transition::Finish(Ok(Final {
                    text,
                    confidence: None,
                    votes: None,
                    step: returned.step,
                    sampling: None,
                }))
            }
            Err(error) => Transition::Finish(Err(error.clone())),
        }
    }

    fn best_so_far(&self) -> Option<Final> {
        None
    }

    fn preview(&self, _purpose: &str, completion: &Completion) -> Option<String> {
        Some(if self.extract {
            extract_answer(&completion.text).value
        } else {
            completion.text.trim().to_string()
        })
    }

    fn planned_calls(&self) -> u32 {
        1
    }
}

fn no_results() -> Error {
    Error::new(
        ErrorKind::Provider,
        "the engine received no results for its calls",
    )
}

// --- self-consistency ---------------------------------------------------------------------

/// `self_consistency`: step-by-step samples, majority vote over normalised answers. With
/// `early_stop`, samples go out in waves and sampling stops once the vote is settled
/// (`crate::engine::sampling`); `samples` is then the maximum.
struct SelfConsistency {
    samples: u32,
    first_wave: u32,
    wave_size: u32,
    early_stop: bool,
    stop_confidence: f64,
    system: String,
    prompt: String,
    temperature: f64,
    /// (normalised answer, raw answer, step) per successful sample, in sample order.
    ballots: Vec<(String, String, usize)>,
    drawn: u32,
    waves: u32,
    stopped: StopReason,
}

impl SelfConsistency {
    fn new(task: &Task) -> Self {
        Self {
            samples: task.samples,
            first_wave: task.first_wave(),
            wave_size: task.wave_size(),
            early_stop: task.early_stop,
            stop_confidence: task.stop_confidence,
            system: cot_system(task),
            prompt: task.prompt.clone(),
            temperature: task.temperature.unwrap_or(DEFAULT_SAMPLE_TEMPERATURE),
            ballots: Vec::new(),
            drawn: 0,
            waves: 0,
            stopped: StopReason::MaxSamples,
        }
    }

    /// The next `size` samples, numbered on from the last.
    fn wave(&self, size: u32) -> Vec<Planned> {
        (self.drawn + 1..=self.drawn + size)
            .map(|i| Planned {
                purpose: format!("sample {i}"),
                messages: base_messages(Some(&self.system), self.prompt.clone()),
                temperature: Some(self.temperature),
                is_final: false,
            })
            .collect()
    }

    fn counts(&self) -> BTreeMap<String, u32> {
        let mut votes: BTreeMap<String, u32> = BTreeMap::new();
        for (key, _, _) in &self.ballots {
            *votes.entry(key.clone()).or_default() += 1;
        }
        votes
    }

    /// The leader's and the runner-up's votes.
    fn top_two(votes: &BTreeMap<String, u32>) -> (u32, u32) {
        let mut counts: Vec<u32> = votes.values().copied().collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        (
            counts.first().copied().unwrap_or(0),
            counts.get(1).copied().unwrap_or(0),
        )
    }

    /// Majority vote; a tie goes to the answer that appeared first in sample order.
    fn tally(&self) -> Option<Final> {
        let votes = self.counts();
        let mut winner: Option<(&str, u32)> = None;
        for (key, _, _) in &self.ballots {
            let count = votes[key];
            if winner.is_none_or(|(_, best)| count > best) {
                winner = Some((key, count));
            }
        }
        let (key, count) = winner?;
        let (_, raw, step) = self.ballots.iter().find(|(k, _, _)| k == key)?;
        let (leader, runner_up) = Self::top_two(&votes);
        Some(Final {
            text: raw.clone(),
            confidence: Some(f64::from(count) / self.ballots.len() as f64),
            votes: Some(votes),
            step: *step,
            sampling: Some(Sampling {
                drawn: self.drawn,
                maximum: self.samples,
                waves: self.waves,
                stopped: self.stopped.name(),
                posterior: winner_stands(leader, runner_up, self.samples - self.drawn),
            }),
        })
    }

    /// After a wave: why sampling stops now, or `None` to draw another wave.
    fn stop_after_wave(&self, wave_voted: bool) -> Option<StopReason> {
        let remaining = self.samples - self.drawn;
        if remaining == 0 {
            return Some(StopReason::MaxSamples);
        }
        // A first wave with no vote at all means the upstream is failing: stop. Later, a
        // wave that failed whole (one member of a panel, a passing error) costs its votes only.
        if !wave_voted && self.ballots.is_empty() {
            return Some(StopReason::Failed);
        }
        if !self.early_stop {
            return None;
        }
        let (leader, runner_up) = Self::top_two(&self.counts());
        decided(leader, runner_up, remaining, self.stop_confidence)
    }

    fn next_wave_size(&self) -> u32 {
        let (leader, runner_up) = Self::top_two(&self.counts());
        let remaining = self.samples - self.drawn;
        next_wave(
            leader,
            runner_up,
            remaining,
            self.stop_confidence,
            self.wave_size,
        )
    }
}

impl Strategy for SelfConsistency {
    fn start(&mut self) -> Vec<Planned> {
        let size = if self.early_stop {
            self.first_wave.min(self.samples)
        } else {
            self.samples
        };
        self.wave(size)
    }

    fn on_results(&mut self, results: &mut [Returned]) -> Transition {
        let sent = results.len() as u32;
        self.drawn += sent;
        self.waves += 1;
        let mut first_error: Option<&Error> = None;
        let mut voted = false;
        for returned in results.iter_mut() {
            match &returned.result {
                Ok(completion) => {
                    let raw = extract_answer(&completion.text).value;
                    self.ballots
                        .push((normalize(&raw), raw.clone(), returned.step));
                    returned.candidate = Some(raw);
                    voted = true;
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        match self.stop_after_wave(voted) {
            None => Transition::Calls(self.wave(self.next_wave_size())),
            Some(reason) => {
                self.stopped = reason;
                // A failed sample is a missing vote; only when no sample voted does the task
                // fail, with the first sample's error so its kind (and retry-after) reaches
                // the caller.
                match (self.tally(), first_error) {
                    (Some(answer), _) => Transition::Finish(Ok(answer)),
                    (None, Some(error)) => Transition::Finish(Err(Error {
                        message: format!(
                            "all {} samples failed; the first: {}",
                            self.drawn, error.message
                        ),
                        ..error.clone()
                    })),
                    (None, None) => Transition::Finish(Err(no_results())),
                }
            }
        }
    }

    fn best_so_far(&self) -> Option<Final> {
        self.tally()
    }

    fn preview(&self, _purpose: &str, completion: &Completion) -> Option<String> {
        Some(extract_answer(&completion.text).value)
    }

    fn planned_calls(&self) -> u32 {
        self.samples
    }

    fn votes(&self) -> bool {
        true
    }
}

// --- refine ---------------------------------------------------------------------------------

enum RefineStage {
    Draft,
    Critique,
    Revise,
}

/// `refine`: a draft, then rounds of critique and revision; stops early on "NO ISSUES".
struct Refine {
    system: Option<String>,
    prompt: String,
    rounds: u32,
    round: u32,
    stage: RefineStage,
    /// The latest draft or revision and the step that produced it.
    best: Option<(String, usize)>,
}

impl Refine {
    fn new(task: &Task) -> Self {
        Self {
            system: task.system.clone(),
            prompt: task.prompt.clone(),
            rounds: task.rounds,
            round: 0,
            stage: RefineStage::Draft,
            best: None,
        }
    }

    fn critique_call(&self, draft: &str) -> Planned {
        let prompt = &self.prompt;
        Planned {
            purpose: format!("critique {}", self.round),
            messages: base_messages(
                self.system.as_deref(),
                format!(
                    "Here is a task and a draft answer.\n\nTask:\n{prompt}\n\nDraft answer:\n{draft}\n\n\
                     Critique the draft: list its errors, gaps and unclear parts. If it needs no \
                     changes, reply with exactly: {NO_ISSUES}"
                ),
            ),
            temperature: None,
            is_final: false,
        }
    }

    fn revise_call(&self, draft: &str, critique: &str) -> Planned {
        let prompt = &self.prompt;
        Planned {
            purpose: format!("revise {}", self.round),
            messages: base_messages(
                self.system.as_deref(),
                format!(
                    "Task:\n{prompt}\n\nDraft answer:\n{draft}\n\nCritique:\n{critique}\n\n\
                     Write an improved answer to the task that addresses the critique. Reply with \
                     the answer only."
                ),
            ),
            temperature: None,
            // The last round's revision is the answer (unless a critique ends refine early).
            is_final: self.round >= self.rounds,
        }
    }

    fn finish(&self) -> Transition {
        match self.best_so_far() {
            Some(answer) => Transition::Finish(Ok(answer)),
            None => Transition::Finish(Err(no_results())),
        }
    }

    /// After a draft or a revision: another round, or done.
    fn next_round(&mut self) -> Transition {
        if self.round >= self.rounds {
            return self.finish();
        }
        self.round += 1;
        self.stage = RefineStage::Critique;
        let draft = self
            .best
            .as_ref()
            .map(|(text, _)| text.clone())
            .unwrap_or_default();
        Transition::Calls(vec![self.critique_call(&draft)])
    }
}

impl Strategy for Refine {
    fn start(&mut self) -> Vec<Planned> {
        vec![Planned {
            purpose: "draft".into(),
            messages: base_messages(self.system.as_deref(), self.prompt.clone()),
            temperature: None,
            is_final: self.rounds == 0,
        }]
    }

    fn on_results(&mut self, results: &mut [Returned]) -> Transition {
        let Some(returned) = results.first_mut() else {
            return Transition::Finish(Err(no_results()));
        };
        let text = match &returned.result {
            Ok(completion) => completion.text.trim().to_string(),
            Err(error) => return Transition::Finish(Err(error.clone())),
        };
        match std::mem::replace(&mut self.stage, RefineStage::Draft) {
            RefineStage::Draft | RefineStage::Revise => {
                returned.candidate = Some(text.clone());
                self.best = Some((text, returned.step));
                self.next_round()
            }
            RefineStage::Critique => {
                if text.to_ascii_uppercase().starts_with(NO_ISSUES) {
                    return self.finish();
                }
                let draft = self
                    .best
                    .as_ref()
                    .map(|(t, _)| t.clone())
                    .unwrap_or_default();
                let call = self.revise_call(&draft, &text);
                self.stage = RefineStage::Revise;
                Transition::Calls(vec![call])
            }
        }
    }

    fn best_so_far(&self) -> Option<Final> {
        self.best.as_ref().map(|(text, step)| Final {
            text: text.clone(),
            confidence: None,
            votes: None,
            step: *step,
            sampling: None,
        })
    }

    fn preview(&self, purpose: &str, completion: &Completion) -> Option<String> {
        // Drafts and revisions are answers; a critique is not.
        (!purpose.starts_with("critique")).then(|| completion.text.trim().to_string())
    }

    fn planned_calls(&self) -> u32 {
        1 + 2 * self.rounds
    }
}
