//! The platform administrators' "Replication" page: rules with remote
//! registries (create, run now, switch on or off, delete), their latest
//! runs with their outcome, and the tasks of one run.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use berth_core::model::run_status;
use berth_core::model::{ReplicationRule, ReplicationRun, SyncRecord, SyncRecordQuery};
use berth_core::platform::{rule_filters, Filters, PatternSet, Remote, RuleSpec};
use berth_core::DirectoryError;
use berth_web::WebState;

use crate::extract::Posted;
use crate::forms::*;
use crate::respond::{html, PageError, PageResult};
use crate::viewer::Viewer;
use crate::views::*;

pub struct RuleRow {
    pub rule: ReplicationRule,
    /// What it covers, readable.
    pub covers: String,
    /// Its trigger, readable.
    pub when: String,
}

pub struct RunRow {
    pub run: ReplicationRun,
    pub status: String,
    pub started: String,
    pub bytes: String,
}

pub struct TaskRow {
    pub task: SyncRecord,
    pub remote_repo: String,
    pub action: String,
    pub bytes: String,
    pub finished: String,
}

#[derive(Template)]
#[template(path = "replication.html")]
pub struct ReplicationPage {
    pub l: Layout,
    pub rules: Vec<RuleRow>,
    pub remotes: Vec<Remote>,
    pub runs: Vec<RunRow>,
    /// The run whose tasks are shown.
    pub run: Option<i64>,
    pub tasks: Vec<TaskRow>,
}

fn patterns(set: &PatternSet) -> String {
    let mut out = if set.include.is_empty() {
        "all".to_owned()
    } else {
        set.include.join(", ")
    };
    if !set.exclude.is_empty() {
        out.push_str(&format!(" except {}", set.exclude.join(", ")));
    }
    out
}

/// A run's outcome from its tasks (as the API reports it).
fn run_outcome(r: &ReplicationRun) -> &'static str {
    let t = &r.tasks;
    match r.status.as_str() {
        run_status::LISTING => "listing",
        run_status::FAILED => "failed",
        _ if t.waiting + t.running > 0 => "running",
        _ if t.failed > 0 => "failed",
        _ if t.conflict > 0 => "conflict",
        _ => "succeeded",
    }
}

pub async fn page(
    State(state): State<WebState>,
    viewer: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let err = |e: DirectoryError| PageError::from(e).for_viewer(&viewer);
    let actor = &viewer.principal;
    let rules = state.replications.rules(actor).await.map_err(err)?;
    let remotes = state.remotes.list(actor).await.map_err(err)?;
    let (runs, _) = state
        .replications
        .runs(actor, None, 20, 0)
        .await
        .map_err(err)?;
    let run = q.get("run").and_then(|r| r.parse::<i64>().ok());
    let tasks = match run {
        Some(id) => {
            state
                .replications
                .tasks(
                    actor,
                    SyncRecordQuery {
                        run: Some(id),
                        limit: 100,
                        ..SyncRecordQuery::default()
                    },
                )
                .await
                .map_err(err)?
                .0
        }
        None => Vec::new(),
    };
    let rules = rules
        .into_iter()
        .map(|rule| {
            let f = rule_filters(&rule);
            let covers = format!(
                "repositories {}; tags {}",
                patterns(&f.repositories),
                patterns(&f.tags)
            );
            let when = match (rule.trigger.as_str(), rule.interval_secs) {
                ("schedule", Some(s)) => {
                    format!("every {s} s, next {}", when_opt(rule.next_run_at))
                }
                ("on_push", _) => "on push".to_owned(),
                _ => "by hand".to_owned(),
            };
            RuleRow { rule, covers, when }
        })
        .collect();
    let runs = runs
        .into_iter()
        .map(|run| RunRow {
            status: run_outcome(&run).to_owned(),
            started: when(run.created_at),
            bytes: size(run.tasks.bytes),
            run,
        })
        .collect();
    let tasks = tasks
        .into_iter()
        .map(|task| TaskRow {
            remote_repo: task
                .replication
                .as_ref()
                .map(|r| format!("{}:{}", r.remote, r.remote_repo))
                .unwrap_or_default(),
            action: task
                .replication
                .as_ref()
                .map(|r| r.action.clone())
                .unwrap_or_default(),
            bytes: size(task.bytes_copied),
            finished: when_opt(task.finished_at),
            task,
        })
        .collect();
    Ok(html(
        ReplicationPage {
            l: Layout::new(&viewer, "replication").messages(&q),
            rules,
            remotes,
            runs,
            run,
            tasks,
        }
        .render(),
    ))
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub async fn create(State(state): State<WebState>, form: Posted) -> Response {
    let number = |name: &str, default: i64| -> Result<i64, DirectoryError> {
        let v = form.get(name).trim();
        if v.is_empty() {
            return Ok(default);
        }
        v.parse()
            .map_err(|_| DirectoryError::Invalid(format!("{name}: a whole number, please")))
    };
    let result = async {
        let spec = RuleSpec {
            name: form.get("name").trim().to_owned(),
            description: form.get("description").to_owned(),
            direction: form.get("direction").to_owned(),
            remote: form.get("remote").to_owned(),
            filters: Filters {
                repositories: PatternSet {
                    include: list(form.get("repositories")),
                    exclude: list(form.get("repositories_exclude")),
                },
                tags: PatternSet {
                    include: list(form.get("tags")),
                    exclude: list(form.get("tags_exclude")),
                },
            },
            destination: form.get("destination").trim().to_owned(),
            flatten: number("flatten", 0)?,
            overwrite: form.checked("override"),
            deletions: form.checked("deletions"),
            referrers: form.checked("referrers"),
            bandwidth: number("bandwidth_kib", 0)?.saturating_mul(1024),
            trigger: form.get("trigger").to_owned(),
            interval_secs: match form.get("trigger") {
                "schedule" => Some(number("interval_seconds", 3600)?),
                _ => None,
            },
            enabled: true,
        };
        state
            .replications
            .create(&form.viewer.principal, &spec)
            .await
            .map(|r| format!("Replication rule {} created.", r.name))
    }
    .await;
    outcome("/replication", result)
}

/// Run now, switch on or off, or delete a rule.
pub async fn action(
    State(state): State<WebState>,
    Path((id, action)): Path<(i64, String)>,
    form: Posted,
) -> Response {
    let actor = &form.viewer.principal;
    let r = &state.replications;
    let result = match action.as_str() {
        "run" => match r.run_now(actor, id).await {
            Ok(run) => {
                return outcome(
                    &format!("/replication?run={run}"),
                    Ok(format!("Run {run} started.")),
                )
            }
            Err(e) => Err(e),
        },
        "enable" | "disable" => {
            async {
                let rule = r.rule(actor, id).await?;
                let filters = rule_filters(&rule);
                let spec = RuleSpec {
                    name: rule.name.clone(),
                    description: rule.description.clone(),
                    direction: rule.direction.clone(),
                    remote: rule.remote.clone(),
                    filters,
                    destination: rule.destination.clone(),
                    flatten: rule.flatten,
                    overwrite: rule.overwrite,
                    deletions: rule.deletions,
                    referrers: rule.referrers,
                    bandwidth: rule.bandwidth,
                    trigger: rule.trigger.clone(),
                    interval_secs: rule.interval_secs,
                    enabled: action == "enable",
                };
                r.update(actor, id, &spec).await.map(|rule| {
                    format!(
                        "Replication rule {} {}.",
                        rule.name,
                        if rule.enabled { "enabled" } else { "disabled" }
                    )
                })
            }
            .await
        }
        "delete" => r
            .delete(actor, id)
            .await
            .map(|()| "Replication rule deleted.".to_owned()),
        other => Err(DirectoryError::Invalid(format!("unknown action {other:?}"))),
    };
    outcome("/replication", result)
}
