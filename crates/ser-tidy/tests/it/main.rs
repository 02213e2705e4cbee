//! ARCHITECTURE.md's **Invariant:** lines, checked on the sources and the crate graph. Each test
//! names the invariant it checks; a broken one names the file and line.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Every `.rs` file under `crates/<krate>/src`, with its text.
fn sources(krate: &str) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root().join("crates").join(krate).join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no sources in {krate}");
    out
}

/// Lines of code (comments aside) matching `pattern` in `files`, as `path:line: text`.
fn matches(files: &[(PathBuf, String)], pattern: &regex::Regex) -> Vec<String> {
    let mut found = Vec::new();
    for (path, text) in files {
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if pattern.is_match(line) {
                found.push(format!("{}:{}: {}", path.display(), i + 1, code));
            }
        }
    }
    found
}

/// The crates a crate depends on (normal dependencies, transitively), as `cargo tree` lists them.
fn dependency_tree(krate: &str) -> String {
    let out = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "--edges", "normal", "--prefix", "none", "-p", krate])
        .current_dir(root())
        .output()
        .expect("running cargo tree");
    assert!(out.status.success(), "cargo tree -p {krate}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// "only `io.rs` and `main.rs` touch the disk" (ser-features, ser-model, ser-eval, ser-pipeline).
#[test]
fn only_io_and_main_touch_the_disk() {
    let disk = regex::Regex::new(
        r"\bstd::fs\b|\bfs_err\b|\bfs::|File::(open|create)|\.(exists|is_file|is_dir|read_dir|canonicalize)\(|\bOpenOptions\b",
    )
    .unwrap();
    for krate in ["ser-features", "ser-model", "ser-eval", "ser-pipeline"] {
        let files: Vec<_> = sources(krate)
            .into_iter()
            .filter(|(p, _)| !matches!(p.file_name().and_then(|n| n.to_str()), Some("io.rs" | "main.rs")))
            .collect();
        let found = matches(&files, &disk);
        assert!(found.is_empty(), "{krate}: disk work outside io.rs and main.rs:\n{}", found.join("\n"));
    }
}

/// "ser-features has no candle dependency"; "ser-eval depends on no candle and on no other
/// stage's crate".
#[test]
fn features_and_eval_know_nothing_of_candle() {
    for krate in ["ser-features", "ser-eval"] {
        let tree = dependency_tree(krate);
        let candle: Vec<&str> = tree.lines().filter(|l| l.starts_with("candle")).collect();
        assert!(candle.is_empty(), "{krate} depends on {candle:?}");
    }
    let tree = dependency_tree("ser-eval");
    let stages: Vec<&str> = tree
        .lines()
        .filter(|l| l.starts_with("ser-") && !["ser-eval ", "ser-cli ", "ser-core "].iter().any(|ok| l.starts_with(ok)))
        .collect();
    assert!(stages.is_empty(), "ser-eval depends on {stages:?}");
}

/// "Nothing depends on ser-infer" (no other crate lists it, as a dependency of any kind).
#[test]
fn nothing_depends_on_ser_infer() {
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        if dir.ends_with("ser-infer") {
            continue;
        }
        let named = manifest.lines().find(|l| l.trim_start().starts_with("ser-infer"));
        assert!(named.is_none(), "{} depends on ser-infer: {named:?}", dir.display());
    }
}

/// "the Python module computes nothing itself": no DSP, decoder or network crate among its
/// dependencies, only the stage libraries.
#[test]
fn the_python_module_computes_nothing_itself() {
    let manifest = std::fs::read_to_string(root().join("python/Cargo.toml")).unwrap();
    let (normal, _) = manifest.split_once("[dev-dependencies]").unwrap_or((&manifest, ""));
    for own in ["rustfft", "realfft", "rubato", "symphonia", "hound", "candle-nn", "ser-model", "gemm"] {
        let listed = normal
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("{own} ")) || l.trim_start().starts_with(&format!("{own}.")));
        assert!(!listed, "python/Cargo.toml depends on {own}; the Python module calls ser-infer and ser-features");
    }
    for stage in ["ser-infer", "ser-features"] {
        assert!(normal.lines().any(|l| l.starts_with(stage)), "python/Cargo.toml does not depend on {stage}");
    }
}

/// "a tensor name is spelled once, by the layer that registers it": a checkpoint tensor name is
/// only ever built from the layer's name (`format!("{name}.weight")`), never written out whole.
#[test]
fn no_tensor_name_is_spelled_out() {
    let spelled = regex::Regex::new(
        r#""[A-Za-z0-9_]+\.(weight|bias|running_mean|running_var|score|weight_ih_l0|weight_hh_l0|bias_ih_l0|bias_hh_l0)(_reverse)?""#,
    )
    .unwrap();
    let found = matches(&sources("ser-model"), &spelled);
    assert!(found.is_empty(), "tensor names spelled outside their layer's registration:\n{}", found.join("\n"));
}

/// "ser-infer holds no copy of the feature code": it reaches no DSP crate but through ser-features.
#[test]
fn infer_computes_features_only_through_ser_features() {
    let manifest = std::fs::read_to_string(root().join("crates/ser-infer/Cargo.toml")).unwrap();
    let (normal, _) = manifest.split_once("[dev-dependencies]").unwrap_or((&manifest, ""));
    for dsp in ["rustfft", "realfft", "rubato"] {
        let listed = normal.lines().any(|l| l.trim_start().starts_with(dsp));
        assert!(!listed, "ser-infer depends on {dsp} itself; the features come from ser-features");
    }
}

/// "ser-model reads no audio": no decoder or resampler among its dependencies.
#[test]
fn model_reads_no_audio() {
    let manifest = std::fs::read_to_string(root().join("crates/ser-model/Cargo.toml")).unwrap();
    let (normal, _) = manifest.split_once("[dev-dependencies]").unwrap_or((&manifest, ""));
    for audio in ["symphonia", "hound", "rubato"] {
        assert!(!normal.lines().any(|l| l.trim_start().starts_with(audio)), "ser-model depends on {audio}");
    }
}

/// "ser-tune defines no layer and no training loop"; "ser-infer holds ... no layer".
#[test]
fn tune_and_infer_define_no_layer_and_no_training_loop() {
    let layer_or_loop =
        regex::Regex::new(r"impl\s+(\w+::)*Layer\s+for|\bfn\s+(train|train_step|backward_cpu)\b").unwrap();
    for krate in ["ser-tune", "ser-infer"] {
        let found = matches(&sources(krate), &layer_or_loop);
        assert!(found.is_empty(), "{krate} defines a layer or a training loop:\n{}", found.join("\n"));
    }
}

/// "The Makefile reads no YAML": what a pipeline says reaches make only through the plan that
/// ser-pipeline writes; no recipe or function of the Makefile opens a pipeline file.
#[test]
fn the_makefile_reads_no_yaml() {
    let makefile = std::fs::read_to_string(root().join("Makefile")).unwrap();
    let reads = regex::Regex::new(r"\$\(shell|\bsed\b|\bgrep\b|\bawk\b").unwrap();
    for (i, line) in makefile.lines().enumerate() {
        if reads.is_match(line) && !line.trim_start().starts_with('#') {
            assert!(!line.contains("yaml") && !line.contains("PIPELINES"), "Makefile:{}: {line}", i + 1);
        }
    }
    assert!(makefile.contains("include $(PLAN)"), "the Makefile includes the plan");
}

/// A crate's top-level modules and the others each names (`crate::<module>` in code, comments
/// aside; a module's submodules count as it).
fn module_graph(krate: &str) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let src = root().join("crates").join(krate).join("src");
    let reference = regex::Regex::new(r"crate::([a-z_][a-z0-9_]*)").unwrap();
    let mut graph = std::collections::BTreeMap::<String, std::collections::BTreeSet<String>>::new();
    for (path, text) in sources(krate) {
        let rel = path.strip_prefix(&src).unwrap();
        let module = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let deps = graph.entry(module.clone()).or_default();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for m in reference.captures_iter(line) {
                let target = m[1].to_string();
                if target != module && target != "Error" && target != "Result" {
                    deps.insert(target);
                }
            }
        }
    }
    graph
}

/// A circle among `graph`'s modules, if there is one.
fn circle(graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            let mut found = path[at..].to_vec();
            found.push(m.to_string());
            return Some(found);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for next in graph.get(m).into_iter().flatten().filter(|n| graph.contains_key(*n)) {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    graph.keys().find_map(|m| visit(m, graph, &mut Vec::new(), &mut done))
}

/// "A crate's modules name each other without circles: its config types at the bottom, the rest
/// above them".
#[test]
fn modules_import_without_circles() {
    for krate in
        ["ser-features", "ser-eval", "ser-pipeline", "ser-core", "ser-tune", "ser-cli", "ser-infer", "ser-model"]
    {
        let graph = module_graph(krate);
        assert_eq!(circle(&graph), None, "{krate}: modules in a circle of imports");
    }
    for krate in ["ser-features", "ser-model"] {
        let graph = module_graph(krate);
        let above: Vec<&String> = graph["config"].iter().filter(|m| graph.contains_key(*m)).collect();
        assert!(above.is_empty(), "{krate}'s config names {above:?}; config types stay at the bottom");
    }
    let features = module_graph("ser-features");
    // The check finds a circle where there is one.
    let mut looped = features.clone();
    looped.get_mut("config").unwrap().insert("dsp".into());
    assert!(circle(&looped).is_some());
}
