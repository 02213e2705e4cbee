//! Running trials and the trial table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use candle_core::Device;
use ser_core::io::write_atomic;
use ser_features::FeaturesConfig;
use ser_features::extract::Shard;
use ser_model::checkpoint::{DataProvenance, EpochRecord};
use ser_model::config::ModelConfig;
use ser_model::data::Dataset;
use ser_model::train::{EpochReporter, TrainData, TrainOptions, train};
use serde::{Deserialize, Serialize};

use crate::space::{Objective, PruneRule, Pruning, TuneConfig};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialStatus {
    Done,
    Failed,
    /// Stopped early by the search's pruning rule; never the best trial.
    Pruned,
}

/// One finished trial: `trials/trial-NNNNNN.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrialRecord {
    pub trial: u32,
    pub status: TrialStatus,
    /// The drawn values.
    pub params: BTreeMap<String, serde_json::Value>,
    /// The whole model config the trial trained with (what `best.yaml` holds).
    pub config: ModelConfig,
    /// The objective's name and value (val part); null when failed.
    pub objective_name: String,
    pub objective: Option<f64>,
    /// Validation metrics of the best epoch.
    pub metrics: BTreeMap<String, f64>,
    pub best_epoch: usize,
    pub epochs: usize,
    pub seconds: f64,
    pub error: Option<String>,
    /// The objective on the val part after each epoch.
    #[serde(default)]
    pub curve: Vec<f64>,
    /// Why a trial was pruned.
    #[serde(default)]
    pub note: Option<String>,
}

/// What the search trains on.
pub struct SearchData<'a> {
    pub train: &'a Dataset,
    pub val: &'a Dataset,
    pub features_config: &'a FeaturesConfig,
    pub provenance: DataProvenance,
}

/// How the search runs.
pub struct SearchOptions<'a> {
    pub out_dir: &'a Path,
    /// Trials trained at once; cores are divided between them.
    pub jobs: usize,
    /// Only the trials whose id falls to this shard.
    pub shard: Option<Shard>,
    pub device: Device,
    /// Cores this search may use in all (divided between the jobs); `None` = every core.
    pub threads: Option<usize>,
}

pub fn trial_path(out_dir: &Path, trial: u32) -> PathBuf {
    out_dir.join("trials").join(format!("trial-{trial:06}.json"))
}

fn in_shard(shard: &Option<Shard>, trial: u32) -> bool {
    shard.as_ref().is_none_or(|s| trial % s.count == s.index)
}

/// `search.json`: what this directory's trials were drawn from; a rerun with other inputs is
/// refused instead of mixing trials of two searches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SearchKey {
    tune: TuneConfig,
    base: ModelConfig,
    features_sha256: String,
    splits_sha256: String,
    fold: u32,
}

/// Watches a trial's epochs: records the objective curve and applies the pruning rule against
/// the trials that had finished when it started.
struct TrialWatch<'a> {
    trial: u32,
    objective: Objective,
    pruning: Option<&'a Pruning>,
    finished: Vec<(TrialStatus, Vec<f64>)>,
    curve: Mutex<Vec<f64>>,
    pruned: Mutex<Option<String>>,
}

impl TrialWatch<'_> {
    /// The objective's value after an epoch. Trials validate every epoch (a search refuses
    /// `early_stopping_on` other than `val`); a record without the figure counts as the worst.
    fn value(&self, record: &EpochRecord) -> f64 {
        match self.objective {
            Objective::ValAccuracy => record.val_accuracy,
            Objective::ValMacroF1 => record.val_macro_f1,
            Objective::ValUar => record.val_uar,
        }
        .unwrap_or(f64::NEG_INFINITY)
    }
}

/// The median rule: after `epoch` epochs, the trial's best so far against the median of the
/// finished trials' best up to the same epoch (a trial that ended sooner without being pruned
/// counts with its final best; a pruned one that ended sooner does not count). Returns the
/// reason to prune, if any.
pub fn median_rule(
    curve: &[f64],
    finished: &[(TrialStatus, Vec<f64>)],
    pruning: &Pruning,
    objective: &str,
) -> Option<String> {
    let PruneRule::Median = pruning.rule;
    let epoch = curve.len();
    if epoch < pruning.warmup_epochs {
        return None;
    }
    let best = |c: &[f64]| c.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut others: Vec<f64> = finished
        .iter()
        .filter(|(status, c)| !c.is_empty() && (c.len() >= epoch || *status == TrialStatus::Done))
        .map(|(_, c)| best(&c[..epoch.min(c.len())]))
        .collect();
    if others.len() < pruning.min_trials {
        return None;
    }
    others.sort_by(f64::total_cmp);
    let n = others.len();
    let median = if n % 2 == 1 { others[n / 2] } else { (others[n / 2 - 1] + others[n / 2]) / 2.0 };
    let mine = best(curve);
    (mine < median).then(|| {
        format!(
            "pruned after epoch {epoch}: best {objective} {mine:.4} < {median:.4}, the median of {n} finished trials \
             at that epoch (median rule)"
        )
    })
}

impl EpochReporter for TrialWatch<'_> {
    fn on_epoch(&self, record: &EpochRecord, max_epochs: usize, _is_best: bool) {
        let mut curve = self.curve.lock().unwrap();
        curve.push(self.value(record));
        // A line every 10 epochs, so a long trial shows it is alive.
        if record.epoch.is_multiple_of(10) {
            let best = curve.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            tracing::info!(
                "trial {}: epoch {}/{max_epochs}, best {} so far {best:.4} ({:.1} s/epoch)",
                self.trial,
                record.epoch,
                self.objective.key(),
                record.seconds
            );
        }
    }

    fn should_stop(&self, _record: &EpochRecord) -> bool {
        let Some(pruning) = self.pruning else { return false };
        let curve = self.curve.lock().unwrap();
        match median_rule(&curve, &self.finished, pruning, self.objective.key()) {
            Some(reason) => {
                *self.pruned.lock().unwrap() = Some(reason);
                true
            }
            None => false,
        }
    }
}

fn run_trial(
    tune: &TuneConfig,
    base: &ModelConfig,
    data: &SearchData,
    device: &Device,
    trial: u32,
    finished: Vec<(TrialStatus, Vec<f64>)>,
) -> TrialRecord {
    let started = Instant::now();
    let failed = |config: ModelConfig, params, error: String| TrialRecord {
        trial,
        status: TrialStatus::Failed,
        params,
        config,
        objective_name: tune.objective.key().into(),
        objective: None,
        metrics: BTreeMap::new(),
        best_epoch: 0,
        epochs: 0,
        seconds: started.elapsed().as_secs_f64(),
        error: Some(error),
        curve: Vec::new(),
        note: None,
    };
    let (config, drawn) = match tune.trial_config(base, trial) {
        Ok(c) => c,
        Err(e) => return failed(base.clone(), BTreeMap::new(), e.to_string()),
    };
    let params: BTreeMap<String, serde_json::Value> =
        drawn.iter().map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or(serde_json::Value::Null))).collect();
    let train_data = TrainData {
        train: data.train,
        val: data.val,
        features_config: data.features_config,
        provenance: data.provenance.clone(),
    };
    let watch = TrialWatch {
        trial,
        objective: tune.objective,
        pruning: tune.pruning.as_ref(),
        finished,
        curve: Mutex::new(Vec::new()),
        pruned: Mutex::new(None),
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        train(&train_data, &config, &TrainOptions::in_memory(device), &watch)
    }));
    let curve = watch.curve.into_inner().unwrap();
    let note = watch.pruned.into_inner().unwrap();
    match outcome {
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            failed(config, params, format!("training panicked: {message}"))
        }
        Ok(Err(e)) => failed(config, params, e.to_string()),
        Ok(Ok(outcome)) => {
            let objective = outcome.metrics.get(tune.objective.key()).copied();
            match objective {
                Some(v) if v.is_finite() => TrialRecord {
                    trial,
                    status: if note.is_some() { TrialStatus::Pruned } else { TrialStatus::Done },
                    params,
                    config,
                    objective_name: tune.objective.key().into(),
                    objective: Some(v),
                    metrics: outcome.metrics,
                    best_epoch: outcome.best_epoch,
                    epochs: outcome.epochs_run,
                    seconds: started.elapsed().as_secs_f64(),
                    error: None,
                    curve,
                    note,
                },
                other => failed(config, params, format!("objective {} is {other:?} (NaN loss?)", tune.objective.key())),
            }
        }
    }
}

/// Runs the trials of this shard that have no file yet; returns the records it wrote.
pub fn run_search(
    tune: &TuneConfig,
    base: &ModelConfig,
    data: &SearchData,
    options: &SearchOptions,
) -> Result<Vec<TrialRecord>> {
    let out = options.out_dir;
    std::fs::create_dir_all(out.join("trials")).map_err(|e| Error::io(out, e))?;
    // The number of trials and the time budget may change between runs: trial i's draw does not
    // depend on them, so a search can be extended or given more time.
    let key = SearchKey {
        tune: TuneConfig { trials: 1, time_budget_s: None, ..tune.clone() },
        base: base.clone(),
        features_sha256: data.provenance.features_sha256.clone(),
        splits_sha256: data.provenance.splits_sha256.clone(),
        fold: data.provenance.fold,
    };
    let key_path = out.join("search.json");
    if key_path.exists() {
        let existing = read_key(&key_path)?;
        if existing != key {
            return Err(Error::File {
                path: key_path,
                message: "this directory holds trials of another search (seed, objective, space, fixed keys, base model.yaml \
                          or data differ); use another --out, or delete it to start over"
                    .into(),
            });
        }
    } else {
        let text = serde_json::to_string_pretty(&key).expect("serialises");
        write_atomic(&key_path, text.as_bytes())
            .map_err(|e| Error::File { path: key_path.clone(), message: e.to_string() })?;
    }

    let mine: Vec<u32> = (0..tune.trials).filter(|&t| in_shard(&options.shard, t)).collect();
    let pending: Vec<u32> = mine.iter().copied().filter(|&t| !trial_path(out, t).exists()).collect();
    tracing::info!(
        "{} trials in this shard, {} already finished, {} to run with {} job(s)",
        mine.len(),
        mine.len() - pending.len(),
        pending.len(),
        options.jobs
    );
    let jobs = options.jobs.max(1).min(pending.len().max(1));
    let cores = options.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let threads_per_job = (cores / jobs).max(1);
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let written: Mutex<Vec<TrialRecord>> = Mutex::new(Vec::new());
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads_per_job).build().expect("a thread pool");
                loop {
                    if first_error.lock().unwrap().is_some() {
                        return;
                    }
                    if let Some(budget) = tune.time_budget_s
                        && started.elapsed().as_secs_f64() > budget
                    {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&trial) = pending.get(i) else { return };
                    // The pruning rule judges against the trials finished by now (in any shard
                    // sharing this directory).
                    let finished = match tune.pruning {
                        Some(_) => match read_trials(&[out.to_path_buf()]) {
                            Ok(records) => records.into_iter().map(|r| (r.status, r.curve)).collect(),
                            Err(e) => {
                                *first_error.lock().unwrap() = Some(e);
                                return;
                            }
                        },
                        None => Vec::new(),
                    };
                    let record = pool.install(|| run_trial(tune, base, data, &options.device, trial, finished));
                    let path = trial_path(out, trial);
                    let text = serde_json::to_string_pretty(&record).expect("serialises");
                    if let Err(e) = write_atomic(&path, text.as_bytes()) {
                        *first_error.lock().unwrap() = Some(Error::File { path, message: e.to_string() });
                        return;
                    }
                    match record.status {
                        TrialStatus::Done => tracing::info!(
                            "trial {trial} done: {} {:.4} after {} epochs, {:.1} s ({}/{} of this run)",
                            record.objective_name,
                            record.objective.unwrap_or(f64::NAN),
                            record.epochs,
                            record.seconds,
                            i + 1,
                            pending.len()
                        ),
                        TrialStatus::Pruned => tracing::info!(
                            "trial {trial} {} ({}/{} of this run)",
                            record.note.as_deref().unwrap_or("pruned"),
                            i + 1,
                            pending.len()
                        ),
                        TrialStatus::Failed => tracing::warn!(
                            "trial {trial} failed: {} ({}/{} of this run)",
                            record.error.as_deref().unwrap_or(""),
                            i + 1,
                            pending.len()
                        ),
                    }
                    written.lock().unwrap().push(record);
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap() {
        return Err(e);
    }
    let skipped = pending.len() - written.lock().unwrap().len();
    if skipped > 0 {
        tracing::warn!("time budget of {:?} s spent: {skipped} trials not started", tune.time_budget_s);
    }
    let mut written = written.into_inner().unwrap();
    written.sort_by_key(|r| r.trial);
    Ok(written)
}

/// Reads every trial file under `dirs` (each a search --out, e.g. one per shard).
pub fn read_trials(dirs: &[PathBuf]) -> Result<Vec<TrialRecord>> {
    let mut records: BTreeMap<u32, (PathBuf, TrialRecord)> = BTreeMap::new();
    for dir in dirs {
        let trials = dir.join("trials");
        let entries = std::fs::read_dir(&trials).map_err(|e| Error::io(&trials, e))?;
        for entry in entries {
            let path = entry.map_err(|e| Error::io(&trials, e))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !(name.starts_with("trial-") && name.ends_with(".json")) {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            let record: TrialRecord = serde_json::from_str(&text)
                .map_err(|e| Error::File { path: path.clone(), message: format!("not a trial record: {e}") })?;
            if let Some((other, existing)) = records.get(&record.trial)
                && existing != &record
            {
                return Err(Error::File {
                    path: path.clone(),
                    message: format!(
                        "trial {} also in {} with other results: shards of different searches?",
                        record.trial,
                        other.display()
                    ),
                });
            }
            records.insert(record.trial, (path, record));
        }
    }
    Ok(records.into_values().map(|(_, r)| r).collect())
}

fn csv_table(records: &[TrialRecord]) -> String {
    let mut params: Vec<String> = records.iter().flat_map(|r| r.params.keys().cloned()).collect();
    params.sort();
    params.dedup();
    let metrics = ["val_accuracy", "val_macro_f1", "val_uar", "val_loss"];
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> =
        ["trial", "status", "objective_name", "objective"].iter().map(|s| s.to_string()).collect();
    header.extend(metrics.iter().map(|s| s.to_string()));
    header.extend(["best_epoch", "epochs", "seconds", "error", "note"].iter().map(|s| s.to_string()));
    header.extend(params.iter().cloned());
    writer.write_record(&header).expect("in memory");
    for r in records {
        let mut row = vec![
            r.trial.to_string(),
            format!("{:?}", r.status).to_lowercase(),
            r.objective_name.clone(),
            r.objective.map_or(String::new(), |v| v.to_string()),
        ];
        row.extend(metrics.iter().map(|m| r.metrics.get(*m).map_or(String::new(), |v| v.to_string())));
        row.extend([
            r.best_epoch.to_string(),
            r.epochs.to_string(),
            format!("{:.3}", r.seconds),
            r.error.clone().unwrap_or_default(),
            r.note.clone().unwrap_or_default(),
        ]);
        row.extend(params.iter().map(|p| match r.params.get(p) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        }));
        writer.write_record(&row).expect("in memory");
    }
    String::from_utf8(writer.into_inner().expect("in memory")).expect("utf-8")
}

/// What `merge` wrote.
#[derive(Debug, Clone)]
pub struct MergeSummary {
    pub trials: usize,
    pub done: usize,
    pub failed: usize,
    pub pruned: usize,
    pub best: Option<TrialRecord>,
}

/// Reads a `search.json`.
fn read_key(path: &Path) -> Result<SearchKey> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::File { path: path.to_path_buf(), message: format!("not a search description: {e}") })
}

/// The search description of the first of `dirs` that has one; all must describe one search.
fn read_search_key(dirs: &[PathBuf]) -> Result<Option<SearchKey>> {
    let mut found: Option<(PathBuf, SearchKey)> = None;
    for dir in dirs {
        let path = dir.join("search.json");
        if !path.exists() {
            continue;
        }
        let key = read_key(&path)?;
        match &found {
            Some((first, k)) if *k != key => {
                return Err(Error::File {
                    path,
                    message: format!(
                        "describes another search than {}; merge parts of one search only",
                        first.display()
                    ),
                });
            }
            Some(_) => {}
            None => found = Some((path, key)),
        }
    }
    Ok(found.map(|(_, k)| k))
}

/// Joins trial files of `dirs` into `out/trials.csv`, `out/best.yaml` (the best trial's whole
/// model.yaml), `out/final.yaml` (the search's base model.yaml with the best trial's values but
/// not the `fixed` shortcuts: what a final model trains with) and `out/best.json`. The best
/// trial is the highest objective; ties go to the lowest id. `final.yaml` is written before
/// `best.yaml`, so `best.yaml` stands for both.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<MergeSummary> {
    let records = read_trials(dirs)?;
    let file_err = |path: PathBuf| move |e: std::io::Error| Error::File { path: path.clone(), message: e.to_string() };
    let table = out.join("trials.csv");
    write_atomic(&table, csv_table(&records).as_bytes()).map_err(file_err(table.clone()))?;
    let best = records
        .iter()
        .filter(|r| r.status == TrialStatus::Done)
        .fold(None::<&TrialRecord>, |best, r| match best {
            Some(b) if b.objective >= r.objective => Some(b),
            _ => Some(r),
        })
        .cloned();
    if let Some(best) = &best {
        let header = format!(
            "# Best of {} trials (ser-tune): trial {}, {} {:.4} on the val part.\n",
            records.len(),
            best.trial,
            best.objective_name,
            best.objective.unwrap_or(f64::NAN)
        );
        if let Some(key) = read_search_key(dirs)? {
            let config = key.tune.final_config(&key.base, best.trial)?;
            let yaml = format!(
                "# Final model config (ser-tune): the search's base model.yaml with trial {}'s values\n\
                 # ({} {:.4} on the val part), without the search's `fixed` keys.\n{}",
                best.trial,
                best.objective_name,
                best.objective.unwrap_or(f64::NAN),
                config.to_yaml()
            );
            let path = out.join("final.yaml");
            write_atomic(&path, yaml.as_bytes()).map_err(file_err(path.clone()))?;
        }
        let yaml = format!("{header}{}", best.config.to_yaml());
        let path = out.join("best.yaml");
        write_atomic(&path, yaml.as_bytes()).map_err(file_err(path.clone()))?;
        let path = out.join("best.json");
        write_atomic(&path, serde_json::to_string_pretty(best).expect("serialises").as_bytes())
            .map_err(file_err(path.clone()))?;
    }
    let count = |s: TrialStatus| records.iter().filter(|r| r.status == s).count();
    Ok(MergeSummary {
        trials: records.len(),
        done: count(TrialStatus::Done),
        failed: count(TrialStatus::Failed),
        pruned: count(TrialStatus::Pruned),
        best,
    })
}
