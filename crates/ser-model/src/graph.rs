//! The ONNX graph the layers write themselves into ([`crate::layers::Layer::export_onnx`]): its
//! nodes, initializers and fresh names; [`crate::onnx`] wraps it into a model.

use onnx_protobuf as pb;
use protobuf::{EnumOrUnknown, MessageField};

/// A node attribute.
#[derive(Debug, Clone)]
pub enum Attr {
    Int(&'static str, i64),
    Ints(&'static str, Vec<i64>),
    Float(&'static str, f32),
    String(&'static str, String),
}

impl Attr {
    fn proto(self) -> pb::AttributeProto {
        use pb::attribute_proto::AttributeType;
        let mut a = pb::AttributeProto::new();
        let (name, kind) = match self {
            Attr::Int(name, i) => {
                a.i = i;
                (name, AttributeType::INT)
            }
            Attr::Ints(name, ints) => {
                a.ints = ints;
                (name, AttributeType::INTS)
            }
            Attr::Float(name, f) => {
                a.f = f;
                (name, AttributeType::FLOAT)
            }
            Attr::String(name, s) => {
                a.s = s.into_bytes();
                (name, AttributeType::STRING)
            }
        };
        a.name = name.into();
        a.type_ = EnumOrUnknown::new(kind);
        a
    }
}

/// The graph as the layers write it: nodes in order, weights as initializers, unique names.
#[derive(Debug, Default)]
pub struct Graph {
    pub(crate) nodes: Vec<pb::NodeProto>,
    pub(crate) initializers: Vec<pb::TensorProto>,
    pub(crate) counter: usize,
}

impl Graph {
    /// A name not used before, from `stem`.
    pub(crate) fn fresh(&mut self, stem: &str) -> String {
        self.counter += 1;
        format!("{stem}_{}", self.counter)
    }

    fn tensor(&mut self, stem: &str, dims: &[usize], data_type: pb::tensor_proto::DataType, raw: Vec<u8>) -> String {
        let name = self.fresh(stem);
        let mut t = pb::TensorProto::new();
        t.name = name.clone();
        t.dims = dims.iter().map(|&d| d as i64).collect();
        t.data_type = data_type as i32;
        t.raw_data = raw;
        self.initializers.push(t);
        name
    }

    /// A float32 constant of `dims` (row-major `values`); returns its name.
    pub fn constant(&mut self, stem: &str, dims: &[usize], values: &[f32]) -> String {
        assert_eq!(dims.iter().product::<usize>(), values.len(), "{stem}: {dims:?}");
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(stem, dims, pb::tensor_proto::DataType::FLOAT, raw)
    }

    /// An int64 vector constant (shapes, axes); returns its name.
    pub fn constant_i64(&mut self, stem: &str, values: &[i64]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(stem, &[values.len()], pb::tensor_proto::DataType::INT64, raw)
    }

    /// A node of `op` with one output; returns the output's name.
    pub fn node(&mut self, op: &str, inputs: &[&str], attrs: Vec<Attr>) -> String {
        self.node_outputs(op, inputs, 1, attrs).remove(0)
    }

    /// A node of `op` with `n_outputs` outputs (the leading ones of the operator's); returns
    /// their names.
    pub fn node_outputs(&mut self, op: &str, inputs: &[&str], n_outputs: usize, attrs: Vec<Attr>) -> Vec<String> {
        let stem = op.to_ascii_lowercase();
        let outputs: Vec<String> = (0..n_outputs).map(|_| self.fresh(&stem)).collect();
        self.push(op, inputs, outputs.clone(), attrs);
        outputs
    }

    pub(crate) fn push(&mut self, op: &str, inputs: &[&str], outputs: Vec<String>, attrs: Vec<Attr>) {
        let mut node = pb::NodeProto::new();
        node.name = format!("{}_{}", op.to_ascii_lowercase(), self.nodes.len());
        node.op_type = op.into();
        node.input = inputs.iter().map(|s| s.to_string()).collect();
        node.output = outputs;
        node.attribute = attrs.into_iter().map(Attr::proto).collect();
        self.nodes.push(node);
    }

    /// `(B, T, F)` to `(B, F, T)` and back (the two are the same permutation).
    pub fn swap_time_and_features(&mut self, x: &str) -> String {
        self.node("Transpose", &[x], vec![Attr::Ints("perm", vec![0, 2, 1])])
    }
}

/// The transpose of a row-major `rows x cols` matrix.
pub fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    assert_eq!(values.len(), rows * cols);
    (0..cols).flat_map(|c| (0..rows).map(move |r| values[r * cols + c])).collect()
}

/// A float32 value with its dimensions (`None`: dynamic, named `batch`).
pub(crate) fn value_info(name: &str, dims: &[Option<usize>]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension};
    let shape = pb::TensorShapeProto {
        dim: dims
            .iter()
            .map(|d| Dimension {
                value: Some(match d {
                    Some(n) => dimension::Value::DimValue(*n as i64),
                    None => dimension::Value::DimParam("batch".into()),
                }),
                ..Dimension::default()
            })
            .collect(),
        ..Default::default()
    };
    let tensor = pb::type_proto::Tensor {
        elem_type: pb::tensor_proto::DataType::FLOAT as i32,
        shape: MessageField::some(shape),
        ..Default::default()
    };
    let mut info = pb::ValueInfoProto::new();
    info.name = name.into();
    info.type_ = MessageField::some(pb::TypeProto {
        value: Some(pb::type_proto::Value::TensorType(tensor)),
        ..Default::default()
    });
    info
}
