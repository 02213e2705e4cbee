//! The make plan of a pipeline: every rule that makes its outputs, and those of the pipelines it
//! stands on, as files with their prerequisites, so that make alone decides what runs.
//!
//! The plan names its roots through make's variables (`$(BIN)`, `$(DATA)`, `$(ARTIFACTS)`,
//! `$(PIPELINES)`, `$(MANIFEST)`, `$(SCHEDULER)`, ...), so the Makefile that includes it keeps
//! the choice of folders, scheduler and profile; the plan holds what the pipeline files say.
//! The names it defines for the Makefile's targets start with `PLAN_`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use crate::pipeline::{self, DataSource, Pipeline, Stage};
use crate::{Error, Result};

/// Pipeline `name` and every pipeline it stands on: its ensemble's other members, the
/// cross-validation a deployment model reports, and theirs in turn. Checks that each member
/// pipeline is a single model trained on the same clips and folds.
pub fn load_closure(dir: &Path, name: &str) -> Result<BTreeMap<String, Pipeline>> {
    let mut all = BTreeMap::new();
    let mut todo = vec![name.to_string()];
    while let Some(next) = todo.pop() {
        if all.contains_key(&next) {
            continue;
        }
        let pipeline = pipeline::load(dir, &next)?;
        todo.extend(pipeline.member_pipelines().iter().cloned());
        todo.extend(pipeline.cross_validation().map(str::to_string));
        all.insert(next, pipeline);
    }
    for pipeline in all.values() {
        for other in pipeline.member_pipelines() {
            check_member(pipeline, &all[other])?;
        }
    }
    Ok(all)
}

/// A member pipeline joins an ensemble only if it is one model trained on the ensemble's clips,
/// split the same way (so each fold's member never trained on that fold's test speakers).
fn check_member(ensemble: &Pipeline, member: &Pipeline) -> Result<()> {
    let fail = |message: String| Error::Pipeline {
        path: ensemble.file().to_path_buf(),
        message: format!("ensemble: pipelines: {}: {message}", member.name),
    };
    if member.ensemble.is_some() {
        return Err(fail(format!("{} is an ensemble itself; name single-model pipelines", member.name)));
    }
    if member.data != ensemble.data {
        return Err(fail(format!(
            "it reads other data ({}) than this pipeline ({})",
            names(&member.data),
            names(&ensemble.data)
        )));
    }
    if member.split.assignment_key() != ensemble.split.assignment_key() {
        return Err(fail(format!(
            "it splits its clips otherwise ({}) than this pipeline ({}); a member must train on the same folds",
            member.split.to_json(),
            ensemble.split.to_json()
        )));
    }
    Ok(())
}

fn names(data: &[DataSource]) -> String {
    data.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// Where a pipeline's files are, in make's terms.
struct Paths<'a> {
    p: &'a Pipeline,
}

impl Paths<'_> {
    fn name(&self) -> &str {
        &self.p.name
    }
    fn conf(&self, stage: Stage) -> String {
        format!("$(ARTIFACTS)/{}/pipeline/{}", self.name(), stage.file_name())
    }
    fn feat_dir(&self) -> String {
        format!("$(DATA)/features/{}", self.name())
    }
    fn feat(&self) -> String {
        format!("{}/features.parquet", self.feat_dir())
    }
    fn splits(&self) -> String {
        format!("{}/splits.parquet", self.feat_dir())
    }
    fn out(&self) -> String {
        format!("$(ARTIFACTS)/{}", self.name())
    }
    /// Each fold (`Some(i)`), or the one model (`None`).
    fn folds(&self) -> Vec<Option<usize>> {
        match self.p.n_folds() {
            Some(k) => (0..k).map(Some).collect(),
            None => vec![None],
        }
    }
    fn checkpoint(&self, fold: Option<usize>) -> String {
        checkpoint(self.name(), fold)
    }
    fn checkpoints(&self) -> Vec<String> {
        self.folds().into_iter().map(|f| format!("{}/model.json", self.checkpoint(f))).collect()
    }
    fn member(&self, fold: Option<usize>, seed: u64) -> String {
        match fold {
            Some(f) => format!("{}/folds/{f}/members/seed-{seed}", self.out()),
            None => format!("{}/members/seed-{seed}", self.out()),
        }
    }
    fn prediction(&self, fold: Option<usize>) -> String {
        match fold {
            Some(f) => format!("{}/folds/{f}/predictions/predictions.parquet", self.out()),
            None => format!("{}/predictions/predictions.parquet", self.out()),
        }
    }
    fn predictions(&self) -> Vec<String> {
        self.folds().into_iter().map(|f| self.prediction(f)).collect()
    }
    fn onnx(&self, fold: Option<usize>) -> String {
        match fold {
            Some(f) => format!("{}/folds/{f}/model.onnx", self.out()),
            None => format!("{}/model.onnx", self.out()),
        }
    }
    fn eval(&self) -> String {
        format!("{}/eval/metrics.json", self.out())
    }
    /// `--config <eval.yaml>`, or nothing: ser-eval's defaults.
    fn eval_config(&self) -> String {
        if self.p.has(Stage::Eval) { format!("--config {} ", self.conf(Stage::Eval)) } else { String::new() }
    }
    fn eval_config_dep(&self) -> Vec<String> {
        if self.p.has(Stage::Eval) { vec![self.conf(Stage::Eval)] } else { Vec::new() }
    }
}

/// Pipeline `name`'s checkpoint of a fold (or its one checkpoint).
fn checkpoint(name: &str, fold: Option<usize>) -> String {
    match fold {
        Some(f) => format!("$(ARTIFACTS)/{name}/folds/{f}/model"),
        None => format!("$(ARTIFACTS)/{name}/model"),
    }
}

/// The trained runs of pipeline `p`, per fold: each seed's member and each member pipeline's
/// checkpoint of that fold (an ensemble), or the fold's checkpoint itself.
fn runs(p: &Pipeline, fold: Option<usize>) -> Vec<String> {
    let paths = Paths { p };
    match &p.ensemble {
        None => vec![paths.checkpoint(fold)],
        Some(ensemble) => ensemble
            .seeds
            .iter()
            .map(|&s| paths.member(fold, s))
            .chain(ensemble.pipelines.iter().map(|other| checkpoint(other, fold)))
            .collect(),
    }
}

/// Make text being written, each rule once (the first pipeline to need a target writes it).
#[derive(Default)]
struct Text {
    text: String,
    targets: BTreeSet<String>,
    /// The rules that train a model (a fold's, a seed's member's), by the pipeline that owns
    /// them: written at the end, as they are (`SCHEDULER=local`) or as Slurm array jobs.
    trainings: Vec<Training>,
}

/// One trained run: its model.json, what it needs, and the command.
struct Training {
    pipeline: String,
    target: String,
    prereqs: Vec<String>,
    recipe: String,
}

impl Text {
    fn line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    fn rule(&mut self, targets: &str, prereqs: &[String], recipe: &[String]) {
        if !self.targets.insert(targets.to_string()) {
            return;
        }
        let _ = writeln!(self.text, "{targets}: {}", prereqs.join(" "));
        for line in recipe {
            if line.starts_with("ifeq") || line.starts_with("else") || line.starts_with("endif") {
                self.line(line);
            } else {
                let _ = writeln!(self.text, "\t{line}");
            }
        }
        self.text.push('\n');
    }
}

/// The make plan of pipeline `name`, from its closure ([`load_closure`]).
pub fn plan(name: &str, all: &BTreeMap<String, Pipeline>) -> String {
    let target = &all[name];
    let mut text = Text::default();
    text.line(&format!(
        "# The make plan of pipeline {name}, written by ser-pipeline plan from the pipeline files below;"
    ));
    text.line("# make remakes it when they change. Do not edit: edit the pipelines.");
    let files: BTreeSet<String> = all
        .values()
        .flat_map(|p| p.files.iter())
        .map(|f| format!("$(PIPELINES)/{}", f.file_name().unwrap_or_default().to_string_lossy()))
        .collect();
    text.line(&format!("$(ARTIFACTS)/{name}/pipeline/plan.mk: {}", files.into_iter().collect::<Vec<_>>().join(" ")));
    text.line("");
    // The target pipeline first, then what it stands on.
    let order = std::iter::once(target).chain(all.values().filter(|p| p.name != name));
    for p in order {
        pipeline_rules(&mut text, p, all);
    }
    training_rules(&mut text, all);
    tune_rules(&mut text, target);
    robustness_rules(&mut text, target);
    targets(&mut text, target);
    text.text
}

/// The trainings: each its own rule here; with `SCHEDULER=slurm`, one array job for an
/// ensemble's trainings and its member pipelines' (or a pipeline's folds), each task a make of
/// one trained run here (a no-op when it is current), so an interrupted array re-runs only what
/// is missing. A model.json stands for its whole run; an interrupted training goes on from its
/// last finished epoch (--resume-if-interrupted).
fn training_rules(text: &mut Text, all: &BTreeMap<String, Pipeline>) {
    let trainings = std::mem::take(&mut text.trainings);
    // Which array job each pipeline's trainings join: the ensemble that names it, or its own.
    let mut group_of: BTreeMap<&str, &str> = BTreeMap::new();
    for p in all.values() {
        for member in p.member_pipelines() {
            group_of.entry(member.as_str()).or_insert(p.name.as_str());
        }
    }
    let mut groups: BTreeMap<&str, Vec<&Training>> = BTreeMap::new();
    for t in &trainings {
        let group = group_of.get(t.pipeline.as_str()).copied().unwrap_or(t.pipeline.as_str());
        groups.entry(group).or_default().push(t);
    }
    text.line("# ---- trainings");
    text.line("ifeq ($(SCHEDULER),slurm)");
    for (group, members) in &groups {
        let targets: Vec<String> = members.iter().map(|t| t.target.clone()).collect();
        let prereqs: BTreeSet<String> = members.iter().flat_map(|t| t.prereqs.iter().cloned()).collect();
        let task = format!(
            "tasks=({}); env MAKEFLAGS= make -s --no-print-directory SCHEDULER=local P=$(P) PIPELINES=$(PIPELINES) DATA=$(DATA) ARTIFACTS=$(ARTIFACTS) PROFILE=$(PROFILE) MANIFEST=$(MANIFEST) \"$${{tasks[$$SLURM_ARRAY_TASK_ID]}}\"",
            targets.join(" ")
        );
        text.rule(
            &format!("{} &", targets.join(" ")),
            &prereqs.into_iter().collect::<Vec<_>>(),
            &[format!(
                "scripts/slurm-array --name train-{group} --shards {} --cpus $(CPUS_PER_TASK) --logs $(ARTIFACTS)/{group}/slurm \\\n\t  --task '{task}' --merge true",
                targets.len()
            )],
        );
    }
    text.line("else");
    for t in &trainings {
        text.rule(&t.target, &t.prereqs, std::slice::from_ref(&t.recipe));
    }
    text.line("endif");
    text.line("");
}

/// The arguments of `ser-features extract` that read the clips of `source`, and the file that
/// must exist first (the synthetic corpus's marker).
fn source_args(source: &DataSource) -> (String, Option<String>) {
    let dir = format!("$(DATA)/raw/{}", source.name);
    let marker = source.synthetic.then(|| format!("{dir}/.done"));
    (format!("--corpus {} --in {dir}", source.corpus_arg()), marker)
}

/// The rules that extract one feature table at `out` (its folder holds the Slurm parts and
/// logs), from `source` or, when given, `$(MANIFEST)`; `channel` makes it the table heard
/// through a channel change (a pattern rule: `%` is the channel).
fn extract_rule(text: &mut Text, p: &Pipeline, out: &str, source: &DataSource, channel: bool) {
    let paths = Paths { p };
    let (args, marker) = source_args(source);
    let raw = format!("$(DATA)/raw/{}", source.name);
    let source_args = format!("$(if $(MANIFEST),--manifest $(MANIFEST),{args})");
    let source_dep = format!("$(if $(MANIFEST),$(MANIFEST),{})", marker.unwrap_or_default());
    let conf = paths.conf(Stage::Features);
    let prereqs = vec![conf.clone(), "$(BIN)/ser-features".into(), source_dep];
    if channel {
        text.rule(
            out,
            &prereqs,
            &[format!("$(BIN)/ser-features extract --quiet --config {conf} {source_args} --channel $* --out $@")],
        );
        return;
    }
    let check = format!(
        "@test -n \"$(MANIFEST)\" || test -d {raw} || {{ echo \"{raw} is missing: run make data (see README), or give MANIFEST=corpus.csv\"; exit 1; }}"
    );
    let dir = out.rsplit_once('/').map_or(".", |(d, _)| d).to_string();
    let tag = out.trim_end_matches(".parquet").rsplit('/').next().unwrap_or("features").to_string();
    let job = if tag == "features" { p.name.clone() } else { format!("{}-{tag}", p.name) };
    let parts = if tag == "features" { format!("{dir}/parts") } else { format!("{dir}/{tag}-parts") };
    let logs = if tag == "features" { format!("{dir}/slurm") } else { format!("{dir}/{tag}-slurm") };
    text.rule(
        out,
        &prereqs,
        &[
            check,
            "ifeq ($(SCHEDULER),slurm)".into(),
            format!(
                "scripts/slurm-array --name features-{job} --shards $(SHARDS) --cpus $(CPUS_PER_TASK) --logs {logs} \\\n\t  --done '{parts}/part-{{i}}-of-$(SHARDS).parquet' --after '$^' \\\n\t  --task '$(BIN)/ser-features extract --quiet --config {conf} {source_args} --shard env --out {parts}/part-$$SLURM_ARRAY_TASK_ID-of-$(SHARDS).parquet' \\\n\t  --merge '$(BIN)/ser-features merge --out $@ {parts}/part-*-of-$(SHARDS).parquet'"
            ),
            "else".into(),
            format!("$(BIN)/ser-features extract --config {conf} {source_args} --out $@"),
            "endif".into(),
        ],
    );
}

/// The feature table of `p` at `out` (or, with `channel`, the pattern of its channel tables):
/// one extraction for one source, else one per source and their merge. With `$(MANIFEST)` the
/// manifest is the one source.
fn table_rules(text: &mut Text, p: &Pipeline, out: &str, channel: bool) {
    if p.data.len() == 1 {
        extract_rule(text, p, out, &p.data[0], channel);
        return;
    }
    let dir = out.trim_end_matches("/features.parquet");
    let parts: Vec<String> = p.data.iter().map(|s| format!("{dir}/corpora/{}.parquet", s.name)).collect();
    text.line("ifeq ($(MANIFEST),)");
    for (source, part) in p.data.iter().zip(&parts) {
        extract_rule(text, p, part, source, channel);
    }
    let mut prereqs = parts.clone();
    prereqs.push("$(BIN)/ser-features".into());
    text.rule(out, &prereqs, &["$(BIN)/ser-features merge --out $@ $(filter %.parquet,$^)".into()]);
    text.line("else");
    // With a manifest, the manifest is the one source of the table (the same target: make reads
    // one branch).
    text.targets.remove(out);
    extract_rule(text, p, out, &p.data[0], channel);
    text.line("endif");
}

/// The rules of one pipeline: its data, feature table, split, trained runs and checkpoints,
/// predictions, evaluation and ONNX exports.
fn pipeline_rules(text: &mut Text, p: &Pipeline, all: &BTreeMap<String, Pipeline>) {
    let paths = Paths { p };
    text.line(&format!("# ---- pipeline {} ({})", p.name, p.file().display()));
    for source in p.data.iter().filter(|s| s.synthetic) {
        let dir = format!("$(DATA)/raw/{}", source.name);
        text.rule(
            &format!("{dir}/.done"),
            &["$(BIN)/ser-features".into()],
            &[
                format!(
                    "$(BIN)/ser-features synth --out {dir} --speakers {} --seed {}",
                    pipeline::DEMO_SPEAKERS,
                    pipeline::DEMO_SEED
                ),
                "touch $@".into(),
            ],
        );
    }
    let (feat, splits) = (paths.feat(), paths.splits());
    table_rules(text, p, &feat, false);
    text.rule(
        &splits,
        &[paths.conf(Stage::Split), feat.clone(), "$(BIN)/ser-features".into()],
        &[format!("$(BIN)/ser-features split --config {} --features {feat} --out $@", paths.conf(Stage::Split))],
    );

    // Training: a checkpoint per fold (or one), each a trained model or an ensemble of members.
    // A model.json stands for its whole checkpoint; an interrupted training goes on from its
    // last finished epoch (--resume-if-interrupted).
    let model = paths.conf(Stage::Model);
    let train_prereqs = vec![model.clone(), feat.clone(), splits.clone(), "$(BIN)/ser-model".into()];
    let train = format!("$(BIN)/ser-model train --config {model} --features {feat} --splits {splits}");
    for fold in paths.folds() {
        let checkpoint = paths.checkpoint(fold);
        match &p.ensemble {
            None => {
                let fold_arg = fold.map(|f| format!(" --fold {f}")).unwrap_or_default();
                text.trainings.push(Training {
                    pipeline: p.name.clone(),
                    target: format!("{checkpoint}/model.json"),
                    prereqs: train_prereqs.clone(),
                    recipe: format!("{train}{fold_arg} --out {checkpoint} --resume-if-interrupted"),
                });
            }
            Some(ensemble) => {
                let f = fold.unwrap_or(0);
                for &seed in &ensemble.seeds {
                    let member = paths.member(fold, seed);
                    text.trainings.push(Training {
                        pipeline: p.name.clone(),
                        target: format!("{member}/model.json"),
                        prereqs: train_prereqs.clone(),
                        recipe: format!("{train} --fold {f} --seed {seed} --out {member} --resume-if-interrupted"),
                    });
                }
                let members = runs(p, fold);
                let mut prereqs = vec![paths.conf(Stage::Ensemble)];
                prereqs.extend(members.iter().map(|m| format!("{m}/model.json")));
                prereqs.push("$(BIN)/ser-model".into());
                text.rule(
                    &format!("{checkpoint}/model.json"),
                    &prereqs,
                    &[format!(
                        "$(BIN)/ser-model ensemble --config {} --out {checkpoint} {}",
                        paths.conf(Stage::Ensemble),
                        members.join(" ")
                    )],
                );
            }
        }
        text.rule(
            &paths.onnx(fold),
            &[format!("{checkpoint}/model.json"), "$(BIN)/ser-model".into()],
            &[format!("$(BIN)/ser-model export --checkpoint {checkpoint} --out $@")],
        );
    }

    let histories: Vec<String> =
        paths.folds().into_iter().flat_map(|f| runs(p, f)).map(|r| format!("{r}/history.csv")).collect();
    let eval_prereqs = |inputs: Vec<String>| {
        let mut prereqs = paths.eval_config_dep();
        prereqs.extend(inputs);
        prereqs.extend(paths.checkpoints());
        prereqs.push("$(BIN)/ser-eval".into());
        prereqs
    };
    match p.cross_validation() {
        None => {
            for fold in paths.folds() {
                let fold_arg = fold.map(|f| format!(" --fold {f}")).unwrap_or_default();
                let checkpoint = paths.checkpoint(fold);
                text.rule(
                    &paths.prediction(fold),
                    &[format!("{checkpoint}/model.json"), feat.clone(), splits.clone(), "$(BIN)/ser-model".into()],
                    &[format!(
                        "$(BIN)/ser-model predict --checkpoint {checkpoint} --features {feat} --splits {splits}{fold_arg} --part test --out $@"
                    )],
                );
            }
            let first = format!("{}/", paths.checkpoint(paths.folds()[0]));
            text.rule(
                &paths.eval(),
                &eval_prereqs(paths.predictions()),
                &[format!(
                    "$(BIN)/ser-eval report {}--predictions {} --checkpoint {first} --out {}/eval \\\n\t  --history {} --title \"Speech emotion recognition: pipeline {}, test part\" --summary {}/summary.json --pipeline {}",
                    paths.eval_config(),
                    paths.predictions().join(" "),
                    paths.out(),
                    histories.join(" "),
                    p.name,
                    paths.out(),
                    p.name
                )],
            );
        }
        Some(cv) => {
            // A deployment model: every clip trains, so its figures are those of the folds it
            // stands on (their pipeline's rules are in this plan too).
            let cv = Paths { p: &all[cv] };
            text.rule(
                &paths.eval(),
                &eval_prereqs(vec![cv.eval()]),
                &[format!(
                    "$(BIN)/ser-eval report {}--checkpoint {} --history {} --out {}/eval --summary {}/summary.json --pipeline {} \\\n\t  --predictions {} \\\n\t  --title \"Speech emotion recognition: pipeline {}, trained on every clip; the figures are the cross-validation of {} it stands on\"",
                    paths.eval_config(),
                    paths.checkpoint(None),
                    histories.join(" "),
                    paths.out(),
                    paths.out(),
                    p.name,
                    cv.predictions().join(" "),
                    p.name,
                    cv.name()
                )],
            );
        }
    }
}

/// The search (`tune`) and its final model (`tuned`), for the target pipeline when it has a
/// `tune` section.
fn tune_rules(text: &mut Text, p: &Pipeline) {
    if !p.has(Stage::Tune) {
        return;
    }
    let paths = Paths { p };
    let (feat, splits, out) = (paths.feat(), paths.splits(), paths.out());
    let (tune_conf, model) = (paths.conf(Stage::Tune), paths.conf(Stage::Model));
    let run = format!(
        "$(BIN)/ser-tune run --config {tune_conf} --base {model} --features {feat} --splits {splits} --out {out}/tune"
    );
    // Finished trials are kept in tune/trials/: an interrupted search resumes where it stopped.
    text.rule(
        &format!("{out}/tune/best.yaml"),
        &[tune_conf.clone(), model.clone(), feat.clone(), splits.clone(), "$(BIN)/ser-tune".into()],
        &[
            "ifeq ($(SCHEDULER),slurm)".into(),
            format!(
                "scripts/slurm-array --name tune-{} --shards $(SHARDS) --cpus $(CPUS_PER_TASK) --logs {out}/tune/slurm \\\n\t  --task '{} --quiet --shard env' \\\n\t  --merge '$(BIN)/ser-tune merge --out {out}/tune {out}/tune'",
                p.name, run
            ),
            "else".into(),
            format!("{run} --jobs $(JOBS)"),
            "endif".into(),
        ],
    );
    let tuned = format!("{out}/tuned");
    text.rule(
        &format!("{tuned}/model/model.json"),
        &[format!("{out}/tune/best.yaml"), feat.clone(), splits.clone(), "$(BIN)/ser-model".into()],
        &[format!(
            "$(BIN)/ser-model train --config {out}/tune/final.yaml --features {feat} --splits {splits} --out $(@D) --resume-if-interrupted"
        )],
    );
    text.rule(
        &format!("{tuned}/predictions/predictions.parquet"),
        &[format!("{tuned}/model/model.json"), feat.clone(), splits.clone(), "$(BIN)/ser-model".into()],
        &[format!(
            "$(BIN)/ser-model predict --checkpoint {tuned}/model --features {feat} --splits {splits} --part test --out $@"
        )],
    );
    let mut prereqs = paths.eval_config_dep();
    prereqs.extend([
        format!("{tuned}/predictions/predictions.parquet"),
        format!("{tuned}/model/model.json"),
        "$(BIN)/ser-eval".into(),
    ]);
    text.rule(
        &format!("{tuned}/eval/metrics.json"),
        &prereqs,
        &[format!(
            "$(BIN)/ser-eval report {}--predictions {tuned}/predictions/predictions.parquet --checkpoint {tuned}/model \\\n\t  --out $(@D) --title \"Speech emotion recognition: pipeline {}, searched hyperparameters, test part\" \\\n\t  --summary {tuned}/summary.json --pipeline {}",
            paths.eval_config(),
            p.name,
            p.name
        )],
    );
}

/// The robustness suite of the target pipeline: its test part (`PART=val`: its validation part)
/// through each channel change of `$(CHANNELS)`, predicted by the same checkpoints, one table.
fn robustness_rules(text: &mut Text, p: &Pipeline) {
    if p.cross_validation().is_some() {
        return;
    }
    let paths = Paths { p };
    let robust = "$(PLAN_ROBUST)";
    text.line(&format!("PLAN_ROBUST := {}/robustness$(if $(filter val,$(PART)),-val)", paths.out()));
    let channel_table = format!("{}/channels/%/features.parquet", paths.feat_dir());
    table_rules(text, p, &channel_table, true);
    let folds: Vec<usize> = paths.folds().into_iter().map(|f| f.unwrap_or(0)).collect();
    let eval = |table: &str, condition: &str, words: &str| -> Vec<String> {
        let predicts: Vec<String> = folds
            .iter()
            .map(|&f| {
                let checkpoint = paths.checkpoint(p.n_folds().map(|_| f));
                format!(
                    "$(BIN)/ser-model predict --checkpoint {checkpoint} --features {table} --splits {} --fold {f} --part $(PART) --out {robust}/{condition}/folds/{f}/predictions.parquet",
                    paths.splits()
                )
            })
            .collect();
        let preds: Vec<String> =
            folds.iter().map(|f| format!("{robust}/{condition}/folds/{f}/predictions.parquet")).collect();
        vec![
            predicts.join(" && \\\n\t  "),
            format!(
                "$(BIN)/ser-eval report {}--predictions {} --out {robust}/{condition}/eval \\\n\t  --title \"Speech emotion recognition: pipeline {}, $(PART) part {words}\"",
                paths.eval_config(),
                preds.join(" "),
                p.name
            ),
        ]
    };
    let mut deps = vec![paths.splits()];
    deps.extend(paths.checkpoints());
    deps.extend(paths.eval_config_dep());
    deps.extend(["$(BIN)/ser-model".into(), "$(BIN)/ser-eval".into()]);
    let with = |first: String| std::iter::once(first).chain(deps.iter().cloned()).collect::<Vec<_>>();
    text.rule(&format!("{robust}/%/eval/metrics.json"), &with(channel_table.clone()), &eval("$<", "$*", "through $*"));
    text.rule(
        &format!("{robust}/clean/eval/metrics.json"),
        &with(paths.feat()),
        &eval(&paths.feat(), "clean", "as recorded"),
    );
    let clean = format!("$(if $(filter val,$(PART)),{robust}/clean/eval,{}/eval)", paths.out());
    text.rule(
        &format!("{robust}/robustness.md"),
        &[
            format!("{clean}/metrics.json"),
            format!("$(foreach c,$(CHANNELS),{robust}/$(c)/eval/metrics.json)"),
            "$(BIN)/ser-eval".into(),
        ],
        &[format!(
            "$(BIN)/ser-eval robustness --clean {clean} --out {robust} $(foreach c,$(CHANNELS),$(c)={robust}/$(c)/eval)"
        )],
    );
}

/// The files behind the Makefile's targets for the target pipeline.
fn targets(text: &mut Text, p: &Pipeline) {
    let paths = Paths { p };
    let folds = paths.folds();
    let list = |items: Vec<String>| items.join(" ");
    text.line("# ---- the Makefile's targets");
    text.line(&format!("PLAN_PIPELINE := {}", p.name));
    text.line(&format!("PLAN_FEATURES := {}", paths.feat()));
    text.line(&format!("PLAN_SPLIT := {}", paths.splits()));
    text.line(&format!("PLAN_TRAIN := {}", list(paths.checkpoints())));
    let predict = match p.cross_validation() {
        Some(cv) => format!("$(ARTIFACTS)/{cv}/eval/metrics.json"),
        None => list(paths.predictions()),
    };
    text.line(&format!("PLAN_PREDICT := {predict}"));
    text.line(&format!("PLAN_EVAL := {}", paths.eval()));
    text.line(&format!("PLAN_ONNX := {}", list(folds.iter().map(|&f| paths.onnx(f)).collect())));
    let tune = p.has(Stage::Tune);
    text.line(&format!(
        "PLAN_TUNE := {}",
        if tune { format!("{}/tune/best.yaml", paths.out()) } else { String::new() }
    ));
    text.line(&format!(
        "PLAN_TUNED := {}",
        if tune { format!("{}/tuned/eval/metrics.json", paths.out()) } else { String::new() }
    ));
    match p.cross_validation() {
        Some(cv) => {
            text.line("PLAN_ROBUSTNESS :=");
            text.line(&format!("PLAN_CROSS_VALIDATION := {cv}"));
        }
        None => {
            text.line("PLAN_ROBUSTNESS := $(PLAN_ROBUST)/robustness.md");
            text.line("PLAN_CROSS_VALIDATION :=");
        }
    }
    text.line(&format!(
        "PLAN_CHECKPOINT := {}",
        if p.n_folds().is_none() { paths.checkpoint(None) } else { String::new() }
    ));
    text.line(&format!(
        "PLAN_INFER_CONFIG := {}",
        if p.has(Stage::Infer) { paths.conf(Stage::Infer) } else { String::new() }
    ));
    let synthetic: Vec<String> =
        p.data.iter().filter(|s| s.synthetic).map(|s| format!("$(DATA)/raw/{}", s.name)).collect();
    text.line(format!("PLAN_CLEAN := {} {} {}", paths.feat_dir(), paths.out(), list(synthetic)).trim_end());
}
