//! ONNX export: a checkpoint as one ONNX model (opset [`OPSET`]). The graph is the checkpoint's
//! normalisation, then every layer's own [`crate::layers::Layer::export_onnx`] in the network's
//! order, then a softmax; an ensemble's is each member's, then their `Mean`. Input [`INPUT`]: the raw feature-table values, float32 `[batch,
//! frames, coeffs]`, the batch dynamic; output [`OUTPUT`]: float32 `[batch, n_classes]` in the
//! checkpoint's label order. `metadata_props` carry what a user needs to feed the graph.
//!
//! The protobuf messages are `onnx-protobuf`'s (generated from the official `onnx.proto`); this
//! module only fills them.

use onnx_protobuf as pb;
use protobuf::{Message, MessageField};

use ser_features::FeaturesConfig;

use crate::checkpoint::Normalization;
use crate::graph::value_info;
pub use crate::graph::{Attr, Graph, transpose};
use crate::network::Network;
use crate::params::Weights;
use crate::predict::{Checkpoint, Member};
use crate::{Error, Result};

/// The default-domain operator set the graph uses (`LSTM` 14, `Softmax` 13, `ReduceSum` 13
/// with axes as an input).
pub const OPSET: i64 = 17;
/// The IR version that goes with opset 17.
pub const IR_VERSION: i64 = 8;
/// The graph's input: raw features, float32 `[batch, frames, coeffs]`.
pub const INPUT: &str = "features";
/// The graph's output: probabilities, float32 `[batch, n_classes]`.
pub const OUTPUT: &str = "probabilities";
/// Bumped when the graph's inputs, outputs or metadata keys change meaning.
pub const FORMAT_VERSION: u32 = 1;

/// The metadata keys of an exported model.
pub mod keys {
    /// The label set in output order, a JSON list.
    pub const LABELS: &str = "ser.labels";
    /// The feature config the input must be computed with (the JSON of `model.json`).
    pub const FEATURES_CONFIG: &str = "ser.features_config";
    pub const FEATURES_CONFIG_HASH: &str = "ser.features_config_hash";
    /// SHA-256 of the source checkpoint's `model.safetensors`.
    pub const WEIGHTS_SHA256: &str = "ser.weights_sha256";
    pub const FORMAT_VERSION: &str = "ser.format_version";
    pub const N_FRAMES: &str = "ser.n_frames";
    pub const N_COEFFS: &str = "ser.n_coeffs";
}

/// One network of the graph: its layers, its weights and the standardisation its input gets.
#[derive(Debug, Clone, Copy)]
pub struct ExportMember<'a> {
    pub network: &'a Network,
    pub weights: &'a Weights,
    pub normalization: &'a Normalization,
}

impl<'a> ExportMember<'a> {
    pub fn of(member: &'a Member) -> ExportMember<'a> {
        ExportMember {
            network: &member.model.network,
            weights: &member.model.weights,
            normalization: &member.meta.normalization,
        }
    }
}

/// What the graph needs besides its networks: from a checkpoint ([`ExportMeta::of`]) and the
/// SHA-256 of its weights file.
#[derive(Debug, Clone, Copy)]
pub struct ExportMeta<'a> {
    pub labels: &'a [String],
    pub features_config: &'a FeaturesConfig,
    pub features_config_hash: &'a str,
    pub weights_sha256: &'a str,
}

impl<'a> ExportMeta<'a> {
    pub fn of(checkpoint: &'a Checkpoint) -> ExportMeta<'a> {
        ExportMeta {
            labels: checkpoint.labels(),
            features_config: checkpoint.features_config(),
            features_config_hash: checkpoint.features_config_hash(),
            weights_sha256: &checkpoint.weights_sha256,
        }
    }
}

/// The networks with their weights and `meta` as the bytes of one ONNX model: each member's
/// standardisation, layers and softmax, then (for more than one) the mean of their
/// probabilities, as [`Checkpoint::probabilities`] computes.
pub fn export(members: &[ExportMember], meta: ExportMeta) -> Result<Vec<u8>> {
    let Some(first) = members.first() else {
        return Err(Error::Config("nothing to export: no network".into()));
    };
    let input = first.network.input();
    let (n_frames, n_coeffs) = (input.steps(), input.features());
    let n_classes = first.network.n_classes();
    let mut graph = Graph::default();
    let mut outputs = Vec::with_capacity(members.len());
    for (i, member) in members.iter().enumerate() {
        let (network, norm) = (member.network, member.normalization);
        if network.input() != input || network.n_classes() != n_classes {
            return Err(Error::Config(format!("member {i}'s input or classes differ from member 0's")));
        }
        if norm.mean.len() != n_coeffs || norm.std.len() != n_coeffs {
            return Err(Error::Config(format!(
                "member {i}: the normalisation has {} means and {} deviations for {n_coeffs} coefficients",
                norm.mean.len(),
                norm.std.len()
            )));
        }
        // Standardisation as `Normalization::apply`: (x - mean) / std, per coefficient.
        let mean = graph.constant("norm_mean", &[n_coeffs], &norm.mean);
        let std = graph.constant("norm_std", &[n_coeffs], &norm.std);
        let centred = graph.node("Sub", &[INPUT, &mean], vec![]);
        let standardised = graph.node("Div", &[&centred, &std], vec![]);
        let logits = network.export_onnx(&mut graph, &standardised, member.weights)?;
        let probabilities = if members.len() == 1 { OUTPUT.to_string() } else { graph.fresh("probabilities") };
        graph.push("Softmax", &[&logits], vec![probabilities.clone()], vec![Attr::Int("axis", -1)]);
        outputs.push(probabilities);
    }
    if members.len() > 1 {
        let inputs: Vec<&str> = outputs.iter().map(String::as_str).collect();
        graph.push("Mean", &inputs, vec![OUTPUT.to_string()], vec![]);
    }

    if n_classes != meta.labels.len() {
        return Err(Error::Config(format!("{n_classes} outputs for {} labels", meta.labels.len())));
    }
    let mut g = pb::GraphProto::new();
    g.name = "ser".into();
    g.node = graph.nodes;
    g.initializer = graph.initializers;
    g.input = vec![value_info(INPUT, &[None, Some(n_frames), Some(n_coeffs)])];
    g.output = vec![value_info(OUTPUT, &[None, Some(n_classes)])];

    let json = |v: serde_json::Result<String>| v.map_err(|e| Error::Config(format!("metadata: {e}")));
    let metadata = [
        (keys::LABELS, json(serde_json::to_string(&meta.labels))?),
        (keys::FEATURES_CONFIG, json(serde_json::to_string(&meta.features_config))?),
        (keys::FEATURES_CONFIG_HASH, meta.features_config_hash.to_string()),
        (keys::WEIGHTS_SHA256, meta.weights_sha256.to_string()),
        (keys::FORMAT_VERSION, FORMAT_VERSION.to_string()),
        (keys::N_FRAMES, n_frames.to_string()),
        (keys::N_COEFFS, n_coeffs.to_string()),
    ];
    let mut model = pb::ModelProto::new();
    model.ir_version = IR_VERSION;
    model.opset_import = vec![pb::OperatorSetIdProto { domain: String::new(), version: OPSET, ..Default::default() }];
    model.producer_name = "ser-model".into();
    model.producer_version = env!("CARGO_PKG_VERSION").into();
    model.doc_string = format!(
        "Speech emotion classifier. Input `{INPUT}`: float32 [batch, {}, {}], the raw features of `{}` \
         (before standardisation, which the graph does). Output `{OUTPUT}`: float32 [batch, {n_classes}] in \
         the order of `{}`.",
        n_frames,
        n_coeffs,
        keys::FEATURES_CONFIG,
        keys::LABELS
    );
    model.graph = MessageField::some(g);
    model.metadata_props = metadata
        .into_iter()
        .map(|(key, value)| pb::StringStringEntryProto { key: key.into(), value, ..Default::default() })
        .collect();
    model.write_to_bytes().map_err(|e| Error::Config(format!("encoding the ONNX model: {e}")))
}
