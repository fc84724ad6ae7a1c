//! Engine behaviour, driven without Python: a scripted provider stands in for the network.

use std::cell::RefCell;
use std::collections::VecDeque;

use super::*;
use crate::error::{Error, ErrorKind};
use crate::provider::{CompletionProvider, Echo};
use crate::types::{Completion, CompletionRequest, Role, Usage};

/// Replies from a script, in call order, and remembers every request.
struct Scripted {
    replies: RefCell<VecDeque<Result<String, Error>>>,
    seen: RefCell<Vec<CompletionRequest>>,
    tokens_per_call: u64,
}

impl Scripted {
    fn new(replies: Vec<Result<&str, Error>>) -> Self {
        Self {
            replies: RefCell::new(replies.into_iter().map(|r| r.map(str::to_string)).collect()),
            seen: RefCell::new(Vec::new()),
            tokens_per_call: 10,
        }
    }

    fn ok(replies: &[&str]) -> Self {
        Self::new(replies.iter().map(|r| Ok(*r)).collect())
    }
}

impl CompletionProvider for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    fn complete(&self, request: &CompletionRequest) -> Result<Completion, Error> {
        self.seen.borrow_mut().push(request.clone());
        let reply = self
            .replies
            .borrow_mut()
            .pop_front()
            .expect("script ran out")?;
        Ok(Completion {
            text: reply,
            model: "m-1".into(),
            finish_reason: "stop".into(),
            usage: Usage {
                prompt_tokens: self.tokens_per_call / 2,
                completion_tokens: self.tokens_per_call / 2,
            },
            provider: None,
            note: None,
        })
    }
}

fn unavailable() -> Error {
    Error::new(ErrorKind::Unavailable, "upstream returned 503")
}

fn task(strategy: StrategyKind) -> Task {
    Task::new("What is 6 * 7?", strategy)
}

#[test]
fn direct_makes_one_call_and_returns_the_reply() {
    let provider = Scripted::ok(&["  42  "]);
    let answer = drive(task(StrategyKind::Direct), &provider).unwrap();
    assert_eq!(answer.text, "42");
    assert_eq!(answer.calls, 1);
    assert_eq!(answer.confidence, None);
    assert_eq!(answer.provider.as_deref(), Some("scripted"));
    assert_eq!(answer.model.as_deref(), Some("m-1"));
    let seen = provider.seen.borrow();
    assert_eq!(seen[0].messages.len(), 1);
    assert_eq!(seen[0].messages[0].role, Role::User);
}

#[test]
fn direct_passes_the_task_options_to_the_request() {
    let provider = Scripted::ok(&["ok"]);
    let t = Task {
        system: Some("You are terse.".into()),
        model: Some("big".into()),
        temperature: Some(0.2),
        max_tokens: Some(50),
        stop: vec!["END".into()],
        ..task(StrategyKind::Direct)
    };
    drive(t, &provider).unwrap();
    let r = &provider.seen.borrow()[0];
    assert_eq!(r.messages[0].role, Role::System);
    assert_eq!(r.messages[0].content, "You are terse.");
    assert_eq!(
        (
            r.model.as_deref(),
            r.temperature,
            r.max_tokens,
            r.stop.as_slice()
        ),
        (Some("big"), Some(0.2), Some(50), &["END".to_string()][..])
    );
}

#[test]
fn cot_asks_for_steps_and_keeps_the_reasoning_in_the_trace() {
    let reply = "6 * 7 is 6 sevens.\nThat makes 42.\nFinal answer: 42";
    let provider = Scripted::ok(&[reply]);
    let answer = drive(task(StrategyKind::Cot), &provider).unwrap();
    assert_eq!(answer.text, "42");
    assert_eq!(answer.steps[0].output.as_deref(), Some(reply));
    assert_eq!(answer.steps[0].candidate.as_deref(), Some("42"));
    let system = &provider.seen.borrow()[0].messages[0];
    assert_eq!(system.role, Role::System);
    assert!(system.content.contains("Final answer:"));
}

#[test]
fn a_failed_call_fails_direct_with_its_error() {
    let provider = Scripted::new(vec![Err(unavailable())]);
    let err = drive(task(StrategyKind::Direct), &provider).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable);
}

#[test]
fn self_consistency_votes_over_normalised_answers() {
    let provider = Scripted::ok(&[
        "Final answer: 1,000",
        "Final answer: 999",
        "so \\boxed{1000.0}",
        "Final answer: 1e3.",
        "Final answer: 999",
    ]);
    let answer = drive(task(StrategyKind::SelfConsistency), &provider).unwrap();
    assert_eq!(
        answer.text, "1,000",
        "the winner's first raw form is returned"
    );
    assert_eq!(answer.confidence, Some(0.6));
    let votes = answer.votes.unwrap();
    assert_eq!(votes.get("1000"), Some(&3));
    assert_eq!(votes.get("999"), Some(&2));
    assert_eq!(answer.calls, 5);
    assert_eq!(
        answer
            .steps
            .iter()
            .map(|s| s.purpose.as_str())
            .collect::<Vec<_>>()[4],
        "sample 5"
    );
}

#[test]
fn self_consistency_asks_for_all_samples_in_one_batch_with_a_temperature() {
    let mut run = Run::new(Task {
        samples: 8,
        ..task(StrategyKind::SelfConsistency)
    });
    let Poll::Calls(calls) = run.poll() else {
        panic!("expected calls")
    };
    assert_eq!(calls.len(), 8);
    assert!(calls.iter().all(|c| c.request.temperature == Some(0.7)));
    assert_eq!(run.poll(), Poll::Waiting, "calls are handed out once");
}

#[test]
fn self_consistency_tie_goes_to_the_answer_seen_first() {
    let provider = Scripted::ok(&[
        "Final answer: B",
        "Final answer: A",
        "Final answer: A",
        "Final answer: B",
    ]);
    let answer = drive(
        Task {
            samples: 4,
            ..task(StrategyKind::SelfConsistency)
        },
        &provider,
    )
    .unwrap();
    assert_eq!(answer.text, "B");
    assert_eq!(answer.confidence, Some(0.5));
}

#[test]
fn a_failed_sample_is_a_missing_vote() {
    let provider = Scripted::new(vec![
        Ok("Final answer: 7"),
        Err(unavailable()),
        Ok("Final answer: 7"),
        Err(unavailable()),
        Ok("Final answer: 8"),
    ]);
    let answer = drive(task(StrategyKind::SelfConsistency), &provider).unwrap();
    assert_eq!(answer.text, "7");
    assert_eq!(answer.confidence, Some(2.0 / 3.0));
    assert_eq!(answer.calls, 5);
    assert_eq!(answer.steps[1].error.as_deref(), Some("unavailable"));
}

#[test]
fn when_every_sample_fails_the_first_error_kind_is_kept() {
    let limited = Error::new(ErrorKind::RateLimited, "slow down").with_retry_after(Some(3.0));
    let provider = Scripted::new(vec![Err(limited), Err(unavailable()), Err(unavailable())]);
    let err = drive(
        Task {
            samples: 3,
            ..task(StrategyKind::SelfConsistency)
        },
        &provider,
    )
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert_eq!(err.retry_after, Some(3.0));
    assert!(
        err.message.contains("all 3 samples failed"),
        "{}",
        err.message
    );
}

#[test]
fn refine_drafts_critiques_and_revises_for_each_round() {
    let provider = Scripted::ok(&["draft", "too vague", "better", "still vague", "best"]);
    let answer = drive(
        Task {
            rounds: 2,
            ..task(StrategyKind::Refine)
        },
        &provider,
    )
    .unwrap();
    assert_eq!(answer.text, "best");
    let purposes: Vec<&str> = answer.steps.iter().map(|s| s.purpose.as_str()).collect();
    assert_eq!(
        purposes,
        ["draft", "critique 1", "revise 1", "critique 2", "revise 2"]
    );
    let seen = provider.seen.borrow();
    assert!(seen[1].messages[0].content.contains("Draft answer:\ndraft"));
    assert!(seen[2].messages[0].content.contains("Critique:\ntoo vague"));
    assert!(seen[4].messages[0]
        .content
        .contains("Draft answer:\nbetter"));
}

#[test]
fn refine_stops_early_when_the_critique_finds_no_issues() {
    let provider = Scripted::ok(&["draft", "No issues."]);
    let answer = drive(
        Task {
            rounds: 3,
            ..task(StrategyKind::Refine)
        },
        &provider,
    )
    .unwrap();
    assert_eq!((answer.text.as_str(), answer.calls), ("draft", 2));
}

#[test]
fn refine_with_zero_rounds_is_just_the_draft() {
    let provider = Scripted::ok(&["draft"]);
    let answer = drive(
        Task {
            rounds: 0,
            ..task(StrategyKind::Refine)
        },
        &provider,
    )
    .unwrap();
    assert_eq!((answer.text.as_str(), answer.calls), ("draft", 1));
}

#[test]
fn max_calls_cuts_self_consistency_and_marks_the_answer() {
    let provider = Scripted::ok(&["Final answer: 1", "Final answer: 1", "Final answer: 2"]);
    let answer = drive(
        Task {
            max_calls: Some(3),
            ..task(StrategyKind::SelfConsistency)
        },
        &provider,
    )
    .unwrap();
    assert_eq!(answer.calls, 3);
    assert!(answer.budget_exhausted);
    assert_eq!(answer.text, "1");
}

#[test]
fn max_calls_ends_refine_with_its_best_answer_so_far() {
    let provider = Scripted::ok(&["draft", "needs work", "revised"]);
    let answer = drive(
        Task {
            rounds: 3,
            max_calls: Some(3),
            ..task(StrategyKind::Refine)
        },
        &provider,
    )
    .unwrap();
    assert_eq!(answer.text, "revised");
    assert_eq!(answer.calls, 3);
    assert!(answer.budget_exhausted);
}

#[test]
fn token_budget_ends_refine_with_the_draft_when_spent() {
    // Each scripted call spends 10 tokens: the draft uses the whole budget, no critique is sent.
    let provider = Scripted::ok(&["draft"]);
    let t = Task {
        rounds: 1,
        max_total_tokens: Some(10),
        ..task(StrategyKind::Refine)
    };
    let answer = drive(t, &provider).unwrap();
    assert!(answer.budget_exhausted);
    assert_eq!((answer.text.as_str(), answer.calls), ("draft", 1));
}

#[test]
fn an_answer_that_went_past_the_token_budget_is_marked() {
    let provider = Scripted {
        tokens_per_call: 40,
        ..Scripted::ok(&["42"])
    };
    let answer = drive(
        Task {
            max_total_tokens: Some(30),
            ..task(StrategyKind::Direct)
        },
        &provider,
    )
    .unwrap();
    assert_eq!(
        answer.text, "42",
        "tokens already spent are not thrown away"
    );
    assert!(answer.budget_exhausted);
}

#[test]
fn token_budget_caps_each_calls_max_tokens_at_its_share() {
    let mut run = Run::new(Task {
        samples: 4,
        max_tokens: Some(500),
        max_total_tokens: Some(100),
        ..task(StrategyKind::SelfConsistency)
    });
    let Poll::Calls(calls) = run.poll() else {
        panic!()
    };
    assert!(calls.iter().all(|c| c.request.max_tokens == Some(25)));
}

#[test]
fn usage_and_latency_are_recorded_per_step_and_summed() {
    let mut run = Run::new(Task {
        samples: 2,
        ..task(StrategyKind::SelfConsistency)
    });
    let Poll::Calls(calls) = run.poll() else {
        panic!()
    };
    for (i, call) in calls.iter().enumerate() {
        let c = Completion {
            text: "Final answer: 3".into(),
            model: "m".into(),
            finish_reason: "stop".into(),
            usage: Usage {
                prompt_tokens: 10,
                completion_tokens: 5 + i as u64,
            },
            provider: Some("p".into()),
            note: None,
        };
        run.complete(call.id, c, 100.0 + i as f64, None, None)
            .unwrap();
    }
    let Poll::Done(Ok(answer)) = run.poll() else {
        panic!()
    };
    assert_eq!(
        answer.usage,
        Usage {
            prompt_tokens: 20,
            completion_tokens: 11
        }
    );
    assert_eq!(answer.steps[1].latency_ms, 101.0);
    assert_eq!(answer.steps[0].provider.as_deref(), Some("p"));
}

#[test]
fn results_may_arrive_in_any_order() {
    let mut run = Run::new(Task {
        samples: 3,
        ..task(StrategyKind::SelfConsistency)
    });
    let Poll::Calls(calls) = run.poll() else {
        panic!()
    };
    for (call, text) in
        calls
            .iter()
            .rev()
            .zip(["Final answer: 9", "Final answer: 9", "Final answer: 1"])
    {
        let c = Completion {
            text: text.into(),
            model: "m".into(),
            finish_reason: "stop".into(),
            usage: Usage::default(),
            provider: None,
            note: None,
        };
        assert_eq!(run.poll(), Poll::Waiting);
        run.complete(call.id, c, 1.0, None, None).unwrap();
    }
    let Poll::Done(Ok(answer)) = run.poll() else {
        panic!()
    };
    assert_eq!(answer.text, "9");
    assert_eq!(
        answer.steps[0].candidate.as_deref(),
        Some("1"),
        "steps stay in plan order"
    );
}

#[test]
fn reporting_an_unknown_or_repeated_call_is_an_error() {
    let mut run = Run::new(Task {
        samples: 2,
        ..task(StrategyKind::SelfConsistency)
    });
    let Poll::Calls(calls) = run.poll() else {
        panic!()
    };
    assert!(run.fail(99, unavailable(), 0.0, None).is_err());
    run.fail(calls[0].id, unavailable(), 0.0, None).unwrap();
    let again = run.fail(calls[0].id, unavailable(), 0.0, None).unwrap_err();
    assert_eq!(again.kind, ErrorKind::InvalidRequest);
}

#[test]
fn an_invalid_task_is_done_before_any_call() {
    let mut run = Run::new(Task {
        samples: 0,
        ..task(StrategyKind::SelfConsistency)
    });
    assert!(matches!(run.poll(), Poll::Done(Err(e)) if e.kind == ErrorKind::InvalidRequest));
}

#[test]
fn every_strategy_runs_against_echo() {
    for kind in StrategyKind::ALL {
        let answer = drive(Task::new("Final answer: 5", kind), &Echo::default()).unwrap();
        assert_eq!(answer.strategy, kind.name());
        assert!(!answer.text.is_empty());
        assert!(answer.usage.total() > 0);
        assert_eq!(answer.steps.len() as u32, answer.calls);
    }
}

#[test]
fn a_completions_note_wins_over_the_drivers_and_reaches_the_trace() {
    let mut run = Run::new(Task {
        samples: 2,
        ..task(StrategyKind::SelfConsistency)
    });
    let Poll::Calls(calls) = run.poll() else {
        panic!()
    };
    let base = Completion {
        text: "Final answer: 3".into(),
        model: "m".into(),
        finish_reason: "stop".into(),
        usage: Usage::default(),
        provider: None,
        note: None,
    };
    let own = Completion {
        note: Some("provider's".into()),
        ..base.clone()
    };
    run.complete(calls[0].id, own, 1.0, None, Some("driver's".into()))
        .unwrap();
    run.complete(calls[1].id, base, 1.0, None, Some("driver's".into()))
        .unwrap();
    let Poll::Done(Ok(answer)) = run.poll() else {
        panic!()
    };
    assert_eq!(answer.steps[0].note.as_deref(), Some("provider's"));
    assert_eq!(answer.steps[1].note.as_deref(), Some("driver's"));
}

fn reply(text: &str) -> Completion {
    Completion {
        text: text.into(),
        model: "m".into(),
        finish_reason: "stop".into(),
        usage: Usage::default(),
        provider: None,
        note: None,
    }
}

#[test]
fn each_sample_shows_its_answer_and_the_running_vote_before_the_batch_is_done() {
    let mut run = Run::new(Task {
        samples: 3,
        ..task(StrategyKind::SelfConsistency)
    });
    assert_eq!(run.planned_calls(), 3);
    let Poll::Calls(calls) = run.poll() else {
        panic!()
    };
    assert!(calls.iter().all(|c| !c.is_final));
    assert_eq!(run.tally(), Some(Default::default()));
    run.complete(
        calls[0].id,
        reply("so... Final answer: 1,000"),
        1.0,
        None,
        None,
    )
    .unwrap();
    assert_eq!(
        run.step(calls[0].id).unwrap().candidate.as_deref(),
        Some("1,000")
    );
    run.complete(calls[2].id, reply("Final answer: 1000.0"), 1.0, None, None)
        .unwrap();
    run.fail(calls[1].id, unavailable(), 1.0, None).unwrap();
    let tally = run.tally().unwrap();
    assert_eq!(
        tally.into_iter().collect::<Vec<_>>(),
        vec![("1000".to_string(), 2)]
    );
}

#[test]
fn strategies_say_how_many_calls_they_plan_and_which_is_final() {
    let refine = Run::new(Task {
        rounds: 2,
        ..task(StrategyKind::Refine)
    });
    assert_eq!(refine.planned_calls(), 5);
    assert_eq!(refine.tally(), None);
    let capped = Run::new(Task {
        rounds: 2,
        max_calls: Some(3),
        ..task(StrategyKind::Refine)
    });
    assert_eq!(capped.planned_calls(), 3);
    for kind in [StrategyKind::Direct, StrategyKind::Cot] {
        let mut run = Run::new(task(kind));
        let Poll::Calls(calls) = run.poll() else {
            panic!()
        };
        assert!(calls[0].is_final, "{kind}");
    }
    // refine with one round: draft, critique, then the final revision.
    let mut run = Run::new(task(StrategyKind::Refine));
    let mut finals = Vec::new();
    for text in ["draft", "fix it", "better"] {
        let Poll::Calls(calls) = run.poll() else {
            panic!()
        };
        finals.push((calls[0].purpose.clone(), calls[0].is_final));
        run.complete(calls[0].id, reply(text), 1.0, None, None)
            .unwrap();
    }
    assert_eq!(
        finals,
        vec![
            ("draft".to_string(), false),
            ("critique 1".to_string(), false),
            ("revise 1".to_string(), true)
        ]
    );
    assert_eq!(run.step(1).unwrap().candidate, None); // a critique is no answer
    assert_eq!(run.step(2).unwrap().candidate.as_deref(), Some("better"));
}

fn adaptive(samples: u32) -> Task {
    Task {
        samples,
        early_stop: true,
        ..task(StrategyKind::SelfConsistency)
    }
}

#[test]
fn adaptive_sampling_stops_once_the_vote_is_decided() {
    // Everyone agrees: a first wave of 3, then the fewest samples that decide it.
    let provider = Scripted::ok(&["Final answer: 7"; 16]);
    let answer = drive(adaptive(16), &provider).unwrap();
    let sampling = answer.sampling.clone().unwrap();
    assert_eq!(answer.votes.as_ref().unwrap()["7"], sampling.drawn);
    assert!(sampling.drawn < 16, "{sampling:?}");
    assert_eq!(sampling.stopped, "confident");
    assert!(sampling.posterior >= task::DEFAULT_STOP_CONFIDENCE);
    assert_eq!(answer.calls, sampling.drawn);
    assert_eq!(provider.seen.borrow().len() as u32, sampling.drawn);
}

#[test]
fn a_split_vote_draws_every_sample_and_says_so() {
    let replies: Vec<&str> = (0..8)
        .map(|i| {
            if i % 2 == 0 {
                "Final answer: 1"
            } else {
                "Final answer: 2"
            }
        })
        .collect();
    let answer = drive(adaptive(8), &Scripted::ok(&replies)).unwrap();
    let sampling = answer.sampling.unwrap();
    assert_eq!((sampling.drawn, sampling.maximum), (8, 8));
    assert_eq!(sampling.stopped, "max_samples");
    assert!(sampling.waves > 1);
}

#[test]
fn the_deterministic_rule_stops_when_the_rest_cannot_catch_up() {
    // With early_stop off every sample goes out at once, in one wave.
    let fixed = drive(
        Task {
            samples: 5,
            ..task(StrategyKind::SelfConsistency)
        },
        &Scripted::ok(&["Final answer: 4"; 5]),
    )
    .unwrap();
    let sampling = fixed.sampling.unwrap();
    assert_eq!((sampling.drawn, sampling.waves), (5, 1));
    assert_eq!(sampling.stopped, "max_samples");
    // A first wave of 4 that agrees, out of 6: the two left cannot catch up (4 > 0 + 2).
    let early = drive(
        Task {
            first_wave: Some(4),
            ..adaptive(6)
        },
        &Scripted::ok(&["Final answer: 4"; 6]),
    )
    .unwrap();
    let sampling = early.sampling.unwrap();
    assert_eq!((sampling.drawn, sampling.stopped), (4, "settled"));
}

#[test]
fn a_budget_that_ends_sampling_is_named() {
    let answer = drive(
        Task {
            max_calls: Some(3),
            first_wave: Some(3),
            stop_confidence: 1.0,
            ..adaptive(10)
        },
        &Scripted::ok(&["Final answer: 1", "Final answer: 2", "Final answer: 1"]),
    )
    .unwrap();
    assert!(answer.budget_exhausted);
    assert_eq!(answer.sampling.unwrap().stopped, "budget");
}

#[test]
fn a_deadline_ends_the_task_with_its_best_answer_so_far() {
    let mut run = Run::new(Task {
        samples: 3,
        ..task(StrategyKind::SelfConsistency)
    });
    let Poll::Calls(calls) = run.poll() else {
        panic!()
    };
    run.complete(calls[0].id, reply("Final answer: 5"), 1.0, None, None)
        .unwrap();
    let answer = run.expire().unwrap();
    assert_eq!(answer.text, "5");
    assert!(answer.budget_exhausted);
    assert_eq!(answer.budget_reason, Some("deadline"));
    assert_eq!(answer.sampling.unwrap().stopped, "deadline");
    // The two calls still out are in the trace, cancelled.
    let cancelled: Vec<_> = answer
        .steps
        .iter()
        .filter_map(|s| s.error.as_deref())
        .collect();
    assert_eq!(cancelled, vec!["deadline_exceeded", "deadline_exceeded"]);
    // Late results are refused: the run is over.
    assert!(run
        .complete(calls[1].id, reply("x"), 1.0, None, None)
        .is_err());
    assert!(matches!(run.poll(), Poll::Done(Ok(_))));
}

#[test]
fn a_deadline_before_any_answer_is_deadline_exceeded() {
    let mut run = Run::new(task(StrategyKind::Refine));
    let Poll::Calls(_) = run.poll() else { panic!() };
    let error = run.expire().unwrap_err();
    assert_eq!(error.kind, ErrorKind::DeadlineExceeded);
}

#[test]
fn budgets_name_what_stopped_the_task() {
    let provider = Scripted::ok(&["draft", "fix it", "better", "more"]);
    let answer = drive(
        Task {
            rounds: 3,
            max_calls: Some(3),
            ..task(StrategyKind::Refine)
        },
        &provider,
    )
    .unwrap();
    assert_eq!(answer.budget_reason, Some("max_calls"));
}

fn priced(task: Task, max_cost_usd: f64) -> Task {
    Task {
        max_cost_usd: Some(max_cost_usd),
        price_input: Some(1.0),   // $1 per million prompt tokens
        price_output: Some(10.0), // $10 per million completion tokens
        ..task
    }
}

#[test]
fn a_cost_budget_caps_each_calls_tokens_at_its_share_of_the_money_left() {
    // $0.001 for a vote of 4: $0.00025 a call; the prompt (~30 tokens) costs $0.00003, which
    // leaves ~22 completion tokens at $10 per million.
    let provider = Scripted::ok(&["Final answer: 4"; 4]);
    let answer = drive(
        priced(
            Task {
                samples: 4,
                ..task(StrategyKind::SelfConsistency)
            },
            0.001,
        ),
        &provider,
    )
    .unwrap();
    let seen = provider.seen.borrow();
    let caps: Vec<u64> = seen.iter().map(|r| r.max_tokens.unwrap()).collect();
    assert!(caps.iter().all(|&c| (15..=25).contains(&c)), "{caps:?}");
    assert_eq!(answer.votes.unwrap()["4"], 4);
}

#[test]
fn a_cost_budget_spent_ends_refine_with_its_best_answer() {
    // Each scripted call reports 10 tokens (5 + 5): $0.000055 a call at these prices.
    let provider = Scripted::ok(&["draft", "fix it", "better", "more", "again"]);
    let answer = drive(
        priced(
            Task {
                rounds: 3,
                ..task(StrategyKind::Refine)
            },
            0.0001,
        ),
        &provider,
    )
    .unwrap();
    assert!(answer.budget_exhausted);
    assert_eq!(answer.budget_reason, Some("max_cost_usd"));
    assert!(answer.calls < 7);
}

#[test]
fn a_cost_budget_needs_known_prices() {
    let err = Task {
        max_cost_usd: Some(1.0),
        ..task(StrategyKind::Direct)
    }
    .validate()
    .unwrap_err();
    assert!(err.message.contains("prices"), "{}", err.message);
}

#[test]
fn a_later_wave_that_fails_whole_costs_its_votes_not_the_vote() {
    let provider = Scripted::new(vec![
        Ok("Final answer: 1"),
        Ok("Final answer: 2"),
        Ok("Final answer: 1"),
        Err(unavailable()),
        Err(unavailable()),
        Err(unavailable()),
        Ok("Final answer: 1"),
        Ok("Final answer: 1"),
    ]);
    let answer = drive(adaptive(8), &provider).unwrap();
    assert_eq!(answer.text, "1");
    let sampling = answer.sampling.unwrap();
    assert_ne!(sampling.stopped, "failed");
    assert!(sampling.waves >= 3, "{sampling:?}");
}

#[test]
fn a_first_wave_that_fails_whole_ends_the_vote() {
    let provider = Scripted::new(vec![Err(unavailable()); 3]);
    let error = drive(adaptive(16), &provider).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unavailable);
    assert_eq!(provider.seen.borrow().len(), 3);
}

#[test]
fn each_step_records_when_its_call_started_as_the_driver_says() {
    let mut run = Run::new(Task {
        samples: 3,
        ..task(StrategyKind::SelfConsistency)
    });
    let Poll::Calls(calls) = run.poll() else {
        panic!()
    };
    assert_eq!(
        run.trace()[0].started_ms,
        None,
        "not started until reported"
    );
    run.complete(
        calls[0].id,
        reply("Final answer: 1"),
        Timing::new(2.5, 40.0),
        None,
        None,
    )
    .unwrap();
    run.fail(calls[1].id, unavailable(), Timing::new(3.0, 7.0), None)
        .unwrap();
    // A bare latency leaves the start unknown (a driver without a clock).
    run.complete(calls[2].id, reply("Final answer: 1"), 9.0, None, None)
        .unwrap();
    let Poll::Done(Ok(answer)) = run.poll() else {
        panic!()
    };
    let timings: Vec<_> = answer
        .steps
        .iter()
        .map(|s| (s.started_ms, s.latency_ms))
        .collect();
    assert_eq!(
        timings,
        [(Some(2.5), 40.0), (Some(3.0), 7.0), (None, 9.0)],
        "a failed call keeps its start too"
    );
}

#[test]
fn refine_steps_keep_the_starts_of_their_calls_across_batches() {
    let mut run = Run::new(Task {
        rounds: 1,
        ..task(StrategyKind::Refine)
    });
    let replies = ["Final answer: 1", "The answer is wrong.", "Final answer: 2"];
    let mut clock = 0.0;
    for text in replies {
        let Poll::Calls(calls) = run.poll() else {
            panic!()
        };
        run.complete(
            calls[0].id,
            reply(text),
            Timing::new(clock, 10.0),
            None,
            None,
        )
        .unwrap();
        clock += 12.0;
    }
    let Poll::Done(Ok(answer)) = run.poll() else {
        panic!()
    };
    let starts: Vec<_> = answer.steps.iter().map(|s| s.started_ms).collect();
    assert_eq!(starts, [Some(0.0), Some(12.0), Some(24.0)]);
}
