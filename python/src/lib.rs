//! The Python module `ser`: ser-infer's [`Classifier`] and ser-features' feature extraction,
//! called as `ser-infer` and `ser-features` call them (no second implementation). Work runs with
//! the GIL released; errors are `ser.SerError` naming the file and the cause. The types are in
//! `ser.pyi`.

use std::path::{Path, PathBuf};

use candle_core::Device;
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyImportError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};
use ser_features::FeaturesConfig;
use ser_features::audio::{Audio, decode_audio};
use ser_features::dsp::Analyzer;
use ser_infer::config::InferConfig;
use ser_infer::output::{recording_json, segment_json};
use ser_infer::timeline::{Adapt, Span, predict_recordings};
use ser_infer::{TimelineConfig, WindowSettings};
use sha2::{Digest, Sha256};

pyo3::create_exception!(
    ser,
    SerError,
    PyValueError,
    "Audio or a checkpoint ser cannot use; the message names the file (or the array) and the cause."
);

fn ser_error(e: impl std::fmt::Display) -> PyErr {
    SerError::new_err(e.to_string())
}

/// What a caller hands over as audio: a file, a file's bytes, or samples.
enum Input {
    Path(PathBuf),
    Bytes(Vec<u8>),
    Samples { interleaved: Vec<f32>, channels: u16, sample_rate: u32 },
}

/// How inputs are named in messages.
const ARRAY: &str = "<array>";
const BYTES: &str = "<bytes>";

impl Input {
    /// `x`: a path (str or os.PathLike), bytes of an audio file, or a float array of samples
    /// (`(n,)` mono, or `(n, channels)`) with `sample_rate`.
    fn from_py(x: &Bound<'_, PyAny>, sample_rate: Option<u32>) -> PyResult<Input> {
        let py = x.py();
        if x.is_instance_of::<PyString>() || x.hasattr("__fspath__")? {
            let path: PathBuf = x.extract()?;
            if sample_rate.is_some() {
                return Err(PyTypeError::new_err(format!(
                    "{}: sample_rate is for arrays; a file says its own rate",
                    path.display()
                )));
            }
            return Ok(Input::Path(path));
        }
        if let Ok(bytes) = x.cast::<PyBytes>() {
            return Ok(Input::Bytes(bytes.as_bytes().to_vec()));
        }
        let numpy = py.import("numpy")?;
        let array = numpy.call_method1("asarray", (x,))?;
        let kind: String = array.getattr("dtype")?.getattr("kind")?.extract()?;
        if kind != "f" {
            return Err(PyTypeError::new_err(format!(
                "{ARRAY}: samples must be floats in [-1, 1] (got dtype kind '{kind}'); pass a path, the file's bytes, \
                 or e.g. x.astype(np.float32) / 32768 for 16-bit integers"
            )));
        }
        let sample_rate = sample_rate
            .ok_or_else(|| PyTypeError::new_err(format!("{ARRAY}: give sample_rate= with an array of samples")))?;
        let array = numpy.call_method1("ascontiguousarray", (array, numpy.getattr("float32")?))?;
        let array: PyReadonlyArrayDyn<'_, f32> = array.extract()?;
        let channels = match array.shape() {
            [_] => 1,
            [n, c] if *c > *n => {
                return Err(PyValueError::new_err(format!(
                    "{ARRAY}: shape [{n}, {c}] has more channels than samples; give (samples, channels), e.g. x.T"
                )));
            }
            [_, c] if *c >= 1 && *c <= u16::MAX as usize => *c as u16,
            shape => {
                return Err(PyValueError::new_err(format!(
                    "{ARRAY}: shape {shape:?}; give (samples,) for mono or (samples, channels)"
                )));
            }
        };
        Ok(Input::Samples { interleaved: array.as_slice()?.to_vec(), channels, sample_rate })
    }

    fn name(&self) -> String {
        match self {
            Input::Path(p) => p.display().to_string(),
            Input::Bytes(_) => BYTES.into(),
            Input::Samples { .. } => ARRAY.into(),
        }
    }

    /// The audio, mono, as ser-infer reads a file (`max_duration_s` refused past).
    fn audio(&self, max_duration_s: f32) -> Result<Audio, String> {
        match self {
            Input::Path(p) => ser_features::io::read_audio(p, max_duration_s).map_err(|e| e.to_string()),
            Input::Bytes(b) => decode_audio(b, max_duration_s).map_err(|e| format!("{BYTES}: {e}")),
            Input::Samples { interleaved, channels, sample_rate } => {
                Audio::from_samples(interleaved, *channels, *sample_rate, max_duration_s)
                    .map_err(|e| format!("{ARRAY}: {e}"))
            }
        }
    }
}

/// A ser checkpoint ready to classify audio.
///
/// Classifier(path=None): the shipped model (ser.SHIPPED_MODEL, built in), or the
/// checkpoint directory `path` (one `ser-model train` wrote, or an ensemble). Load once and call
/// it from as many threads as you like.
#[pyclass(frozen, module = "ser")]
struct Classifier {
    inner: ser_infer::Classifier,
}

impl Classifier {
    /// The windows predict and timeline use: the arguments over ser-infer's defaults.
    fn windows(
        &self,
        window: Option<f64>,
        hop: Option<f64>,
        silence_dbfs: Option<f64>,
        adapt: &str,
    ) -> PyResult<TimelineConfig> {
        let adapt: Adapt = adapt.parse().map_err(|e| ser_error(format!("adapt: {e}")))?;
        WindowSettings { window_s: window, hop_s: hop, silence_dbfs, adapt: Some(adapt) }
            .or(InferConfig::default().windows())
            .resolve(&self.inner)
            .map_err(ser_error)
    }

    fn recording(
        &self,
        input: &Input,
        max_duration_s: f32,
        config: &TimelineConfig,
        span: Span,
    ) -> Result<serde_json::Value, String> {
        let audio = input.audio(max_duration_s)?;
        let result = predict_recordings(&self.inner, &[(&audio.samples, audio.sample_rate)], config, span).remove(0);
        let recording = result.map_err(|e| format!("{}: {e}", input.name()))?;
        Ok(recording_json(&recording, self.inner.labels()))
    }
}

#[pymethods]
impl Classifier {
    #[new]
    #[pyo3(signature = (path=None))]
    fn new(py: Python<'_>, path: Option<PathBuf>) -> PyResult<Classifier> {
        let inner = py.detach(|| ser_infer::Classifier::load_or_shipped(path.as_deref(), &Device::Cpu)).map_err(
            |e| match &path {
                Some(p) => ser_error(format!("loading checkpoint {}: {e}", p.display())),
                None => ser_error(e),
            },
        )?;
        Ok(Classifier { inner })
    }

    /// The classes, in the order of the probabilities.
    #[getter]
    fn labels(&self) -> Vec<String> {
        self.inner.labels().to_vec()
    }

    /// The checkpoint's directory (ser.SHIPPED_MODEL for the shipped model).
    #[getter]
    fn path(&self) -> String {
        self.inner.dir().display().to_string()
    }

    /// The SHA-256 of the weights that answer (model.safetensors), in hex.
    #[getter]
    fn sha256(&self) -> &str {
        self.inner.weights_sha256()
    }

    /// Seconds of audio the network hears at once.
    #[getter]
    fn window_seconds(&self) -> Option<f64> {
        self.inner.window_seconds()
    }

    /// The model's sidecar (model.json) as a dict: labels, feature config, training provenance.
    #[getter]
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let members: Vec<_> = self.inner.checkpoint().members.iter().map(|m| &m.meta).collect();
        Ok(pythonize::pythonize(py, &members)?)
    }

    fn __repr__(&self) -> String {
        format!("ser.Classifier({:?}, labels={:?})", self.inner.dir().display().to_string(), self.inner.labels())
    }

    /// The emotion of one recording, or of each in a list (in order, decoded and classified in
    /// parallel as `ser-infer predict` does).
    ///
    /// x: a path, an audio file's bytes, or float samples ((n,) or (n, channels)) with
    /// sample_rate. Long audio is cut into windows and their probabilities averaged; windows
    /// whose loudest 100 ms is quieter than silence_dbfs are skipped, and a recording with no
    /// loud window answers silent=True with label None.
    ///
    /// Returns {"label", "confidence", "probabilities": {label: p}, "silent", "windows",
    /// "silent_windows", "start_s", "end_s"}, the JSON `ser-infer predict --format jsonl` prints.
    ///
    /// adapt: "recording" standardises each recording's windows around its own speech,
    /// "together" all the listed files' around theirs (one speaker's files), instead of the
    /// training statistics (`ser-infer predict --adapt`).
    #[pyo3(signature = (x, sample_rate=None, *, window=None, hop=None, silence_dbfs=None, first_window=false, max_duration=None, adapt="off"))]
    #[allow(clippy::too_many_arguments)]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        sample_rate: Option<u32>,
        window: Option<f64>,
        hop: Option<f64>,
        silence_dbfs: Option<f64>,
        first_window: bool,
        max_duration: Option<f32>,
        adapt: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let config = self.windows(window, hop, silence_dbfs, adapt)?;
        let span = if first_window { Span::FirstWindow } else { Span::Whole };
        let max_duration = max_duration.unwrap_or(InferConfig::default().max_duration_s);
        // A list of paths is many files; any other list is samples.
        if let Some(paths) = x.cast::<PyList>().ok().and_then(|l| l.extract::<Vec<PathBuf>>().ok()) {
            if sample_rate.is_some() {
                return Err(PyTypeError::new_err("sample_rate is for arrays; files say their own rate"));
            }
            let answers = py.detach(|| self.predict_files(&paths, max_duration, &config, span))?;
            return Ok(pythonize::pythonize(py, &answers)?);
        }
        let input = Input::from_py(x, sample_rate)?;
        let answer = py.detach(|| self.recording(&input, max_duration, &config, span)).map_err(ser_error)?;
        Ok(pythonize::pythonize(py, &answer)?)
    }

    /// The emotion of each window of a recording, as `ser-infer timeline` prints them.
    ///
    /// x: as for predict. Returns a pandas DataFrame (a row per window) when pandas is installed
    /// and as_frame is not False, else a list of dicts {"start_s", "end_s", "level_dbfs",
    /// "silent", "label", "confidence", "probabilities"}. adapt="recording" standardises the
    /// windows around the recording's own speech (`ser-infer timeline --adapt`).
    #[pyo3(signature = (x, sample_rate=None, *, window=None, hop=None, silence_dbfs=None, max_duration=None, as_frame=None, adapt="off"))]
    #[allow(clippy::too_many_arguments)]
    fn timeline<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        sample_rate: Option<u32>,
        window: Option<f64>,
        hop: Option<f64>,
        silence_dbfs: Option<f64>,
        max_duration: Option<f32>,
        as_frame: Option<bool>,
        adapt: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let config = self.windows(window, hop, silence_dbfs, adapt)?;
        let max_duration = max_duration.unwrap_or(InferConfig::default().timeline_max_duration_s);
        let input = Input::from_py(x, sample_rate)?;
        let rows = py
            .detach(|| -> Result<Vec<serde_json::Value>, String> {
                let audio = input.audio(max_duration)?;
                let segments = ser_infer::timeline(&self.inner, &audio.samples, audio.sample_rate, &config)
                    .map_err(|e| format!("{}: {e}", input.name()))?;
                Ok(segments.iter().map(|s| segment_json(s, self.inner.labels())).collect())
            })
            .map_err(ser_error)?;
        let rows = pythonize::pythonize(py, &rows)?;
        let pandas = match (as_frame, py.import("pandas")) {
            (Some(false), _) => return Ok(rows),
            (_, Ok(pandas)) => pandas,
            (None, Err(_)) => return Ok(rows),
            (Some(true), Err(e)) => return Err(PyImportError::new_err(format!("as_frame=True needs pandas: {e}"))),
        };
        pandas.call_method1("DataFrame", (rows,))
    }

    /// The network's input for x: its feature matrix (frames x coefficients, float32), computed
    /// with this checkpoint's feature config as ser.features does.
    #[pyo3(signature = (x, sample_rate=None))]
    fn features<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        sample_rate: Option<u32>,
    ) -> PyResult<Bound<'py, PyAny>> {
        features_with(py, x, sample_rate, self.inner.features_config())
    }
}

impl Classifier {
    fn predict_files(
        &self,
        paths: &[PathBuf],
        max_duration: f32,
        config: &TimelineConfig,
        span: Span,
    ) -> PyResult<Vec<serde_json::Value>> {
        let mut answers = Vec::with_capacity(paths.len());
        let mut first_error = None;
        ser_infer::files::predict_files(&self.inner, paths, max_duration, config, span, |_, result| {
            match result {
                Ok(r) => answers.push(recording_json(&r, self.inner.labels())),
                Err(e) => {
                    first_error.get_or_insert(e.to_string());
                }
            }
            Ok(())
        })
        .map_err(ser_error)?;
        match first_error {
            Some(e) => Err(ser_error(e)),
            None => Ok(answers),
        }
    }
}

/// The features of x with `config`, as `ser-features features` computes them for a file.
fn features_with<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    sample_rate: Option<u32>,
    config: &FeaturesConfig,
) -> PyResult<Bound<'py, PyAny>> {
    let input = Input::from_py(x, sample_rate)?;
    let matrix = py
        .detach(|| -> Result<ser_features::dsp::FeatureMatrix, String> {
            let analyzer = Analyzer::new(config);
            let name = input.name();
            match &input {
                Input::Path(p) => ser_features::extract::read_file_features(p, &analyzer).map_err(|e| e.to_string()),
                Input::Bytes(b) => {
                    ser_features::extract::file_features(b, &analyzer).map_err(|e| format!("{name}: {e}"))
                }
                Input::Samples { interleaved, .. } => {
                    let audio = input.audio(config.max_duration_s)?;
                    let digest = samples_digest(interleaved);
                    ser_features::extract::audio_features(&audio, &digest, &analyzer)
                        .map_err(|e| format!("{name}: {e}"))
                }
            }
        })
        .map_err(ser_error)?;
    let (frames, coeffs) = (matrix.n_frames, matrix.n_coeffs);
    let flat = PyArray1::from_vec(py, matrix.values);
    Ok(flat.reshape([frames, coeffs])?.into_any())
}

/// The digest that seeds a feature config's channel noise for samples: the SHA-256 of their
/// little-endian bytes (a file's is the file's).
fn samples_digest(samples: &[f32]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    samples.iter().for_each(|v| hasher.update(v.to_le_bytes()));
    hasher.finalize().to_vec()
}

/// The feature matrix of x (frames x coefficients, float32), equal to the `features` column of
/// the feature table's row for that file (reshaped), as `ser-features features` writes it.
///
/// x: a path, an audio file's bytes, or float samples with sample_rate. config: None (the
/// shipped model's feature config), a features YAML file (a pipeline's
/// artifacts/<p>/pipeline/features.yaml), a dict of its keys, or a ser.Classifier (its
/// checkpoint's config).
#[pyfunction]
#[pyo3(signature = (x, sample_rate=None, config=None))]
fn features<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    sample_rate: Option<u32>,
    config: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let config: FeaturesConfig = match config {
        None => shipped_features_config(py)?.clone(),
        Some(c) if c.is_instance_of::<Classifier>() => c.cast::<Classifier>()?.get().inner.features_config().clone(),
        Some(c) if c.is_instance_of::<PyDict>() => {
            let value: serde_json::Value = pythonize::depythonize(c)?;
            let yaml = serde_json::to_string(&value).map_err(ser_error)?;
            FeaturesConfig::from_yaml(&yaml).map_err(|e| ser_error(format!("config: {e}")))?
        }
        Some(c) => {
            let path: PathBuf = c.extract().map_err(|_| {
                PyTypeError::new_err("config must be None, a features YAML path, a dict or a ser.Classifier")
            })?;
            ser_features::read_features_config(Path::new(&path)).map_err(ser_error)?
        }
    };
    features_with(py, x, sample_rate, &config)
}

/// The shipped model's feature config, read from the built-in model once (not on every call).
fn shipped_features_config(py: Python<'_>) -> PyResult<&'static FeaturesConfig> {
    static CONFIG: std::sync::OnceLock<FeaturesConfig> = std::sync::OnceLock::new();
    if let Some(config) = CONFIG.get() {
        return Ok(config);
    }
    let shipped = py.detach(|| ser_infer::Classifier::shipped(&Device::Cpu)).map_err(ser_error)?;
    Ok(CONFIG.get_or_init(|| shipped.features_config().clone()))
}

#[pymodule]
fn ser(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Classifier>()?;
    m.add_function(wrap_pyfunction!(features, m)?)?;
    m.add("SerError", m.py().get_type::<SerError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("SHIPPED_MODEL", ser_infer::shipped::DIR)?;
    m.add("HAS_SHIPPED_MODEL", ser_infer::shipped::BUILT_IN)?;
    Ok(())
}
