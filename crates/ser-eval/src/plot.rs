//! Pictures: the confusion matrix (counts and row-normalised) and the training curves, each as
//! PNG and SVG, drawn with plotters into memory and written atomically by the caller.
//!
//! Text needs a TrueType font: `SER_FONT` names one, otherwise the usual system locations are
//! searched (DejaVu, Liberation, Noto, macOS, Windows). Without one, pictures are skipped with a
//! message that says how to fix it; metrics and reports are still written.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::history::History;
use crate::metrics::Metrics;
use crate::{Error, Result};

/// Registers a font for plotters once ([`crate::io::read_font`] finds it); `Err` says why
/// pictures cannot be drawn.
pub fn ensure_font() -> std::result::Result<PathBuf, String> {
    static FONT: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let (path, bytes) = crate::io::read_font()?;
        // plotters keeps fonts for the whole process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| format!("{}: not a usable TrueType font; set SER_FONT=/path/to/font.ttf", path.display()))?;
        tracing::debug!("font for pictures: {}", path.display());
        Ok(path)
    })
    .clone()
}

/// A picture in both formats.
pub struct Picture {
    pub png: Vec<u8>,
    pub svg: String,
    pub width: u32,
    pub height: u32,
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

fn render(
    name: &Path,
    width: u32,
    height: u32,
    bitmap: impl FnOnce(&DrawingArea<BitMapBackend, Shift>) -> std::result::Result<(), String>,
    vector: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> std::result::Result<(), String>,
) -> Result<Picture> {
    ensure_font().map_err(|m| Error::Plot { path: name.to_path_buf(), message: m })?;
    let fail = |m: String| Error::Plot { path: name.to_path_buf(), message: m };
    let mut rgb = vec![0u8; (width * height * 3) as usize];
    {
        let area = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        bitmap(&area).map_err(fail)?;
        area.present().map_err(|e| fail(e.to_string()))?;
    }
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        vector(&area).map_err(fail)?;
        area.present().map_err(|e| fail(e.to_string()))?;
    }
    Ok(Picture { png: encode_png(&rgb, width, height).map_err(fail)?, svg, width, height })
}

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// White to dark blue.
fn shade(value: f64) -> RGBColor {
    let v = value.clamp(0.0, 1.0);
    let mix = |light: f64, dark: f64| (light + (dark - light) * v).round() as u8;
    RGBColor(mix(247.0, 8.0), mix(251.0, 48.0), mix(255.0, 107.0))
}

const CELL: i32 = 72;
const LEFT: i32 = 110;
const TOP: i32 = 70;

/// Pixel size of the confusion picture for `k` classes.
pub fn confusion_size(k: usize) -> (u32, u32) {
    ((LEFT + CELL * k as i32 + 30) as u32, (TOP + CELL * k as i32 + 70) as u32)
}

fn draw_confusion<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    metrics: &Metrics,
    normalised: bool,
    title: &str,
) -> std::result::Result<(), String> {
    let k = metrics.labels.len();
    area.fill(&WHITE).map_err(err)?;
    let text = |size: f64, colour: RGBColor, h: HPos| -> TextStyle<'static> {
        TextStyle {
            font: ("sans-serif", size).into_font(),
            color: colour.to_backend_color(),
            pos: Pos::new(h, VPos::Center),
        }
    };
    let grey = RGBColor(90, 90, 90);
    area.draw(&Text::new(title.to_string(), (LEFT, 24), text(18.0, BLACK, HPos::Left))).map_err(err)?;
    for (t, row) in metrics.confusion.counts.iter().enumerate() {
        let total: u64 = row.iter().sum();
        for (p, &count) in row.iter().enumerate() {
            let share = if total == 0 { 0.0 } else { count as f64 / total as f64 };
            let (x, y) = (LEFT + CELL * p as i32, TOP + CELL * t as i32);
            area.draw(&Rectangle::new([(x, y), (x + CELL, y + CELL)], shade(share).filled())).map_err(err)?;
            area.draw(&Rectangle::new([(x, y), (x + CELL, y + CELL)], RGBColor(200, 200, 200))).map_err(err)?;
            let label = if normalised { format!("{:.0}%", share * 100.0) } else { count.to_string() };
            let colour = if share > 0.5 { WHITE } else { BLACK };
            area.draw(&Text::new(label, (x + CELL / 2, y + CELL / 2), text(15.0, colour, HPos::Center)))
                .map_err(err)?;
        }
    }
    let grid_end = TOP + CELL * k as i32;
    for (i, label) in metrics.labels.iter().enumerate() {
        let y = TOP + CELL * i as i32 + CELL / 2;
        area.draw(&Text::new(label.clone(), (LEFT - 8, y), text(13.0, BLACK, HPos::Right))).map_err(err)?;
        let x = LEFT + CELL * i as i32 + CELL / 2;
        area.draw(&Text::new(label.clone(), (x, grid_end + 14), text(13.0, BLACK, HPos::Center))).map_err(err)?;
    }
    area.draw(&Text::new("predicted", (LEFT + CELL * k as i32 / 2, grid_end + 44), text(14.0, grey, HPos::Center)))
        .map_err(err)?;
    area.draw(&Text::new("true", (LEFT - 8, TOP - 14), text(14.0, grey, HPos::Right))).map_err(err)?;
    Ok(())
}

/// The confusion matrix, rows = true class, columns = predicted class. With `normalised`, cells
/// show each row's share; otherwise counts. Colour is always the row share.
pub fn confusion_picture(name: &Path, metrics: &Metrics, normalised: bool, title: &str) -> Result<Picture> {
    let (width, height) = confusion_size(metrics.labels.len());
    render(
        name,
        width,
        height,
        |a| draw_confusion(a, metrics, normalised, title),
        |a| draw_confusion(a, metrics, normalised, title),
    )
}

fn draw_curves<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    histories: &[History],
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE).map_err(err)?;
    let panels = area.split_evenly((1, 2));
    let epochs = || histories.iter().flat_map(|h| h.epoch.iter().copied());
    let last = epochs().fold(1.0, f64::max);
    let first = epochs().fold(last, f64::min);
    // One run: solid lines 2 px wide. Several (folds, ensemble members): thin, translucent lines
    // of the same two colours, so their spread shows and no run hides another.
    let (width, opacity) = if histories.len() == 1 { (2, 1.0) } else { (1, 0.55) };
    let train_colour = RGBColor(31, 119, 180);
    let val_colour = RGBColor(255, 127, 14);
    type Series = fn(&History) -> (&Vec<f64>, &Vec<f64>);
    let series: [(&str, Series); 2] =
        [("loss", |h| (&h.train_loss, &h.val_loss)), ("accuracy", |h| (&h.train_accuracy, &h.val_accuracy))];
    for (panel, (name, pick)) in panels.iter().zip(series) {
        let finite = histories.iter().flat_map(|h| {
            let (train, val) = pick(h);
            train.iter().chain(val.iter()).copied().filter(|v| v.is_finite())
        });
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        let pad = ((hi - lo) * 0.05).max(1e-3);
        let caption = match histories.len() {
            1 => name.to_string(),
            n => format!("{name}, {n} runs"),
        };
        let mut chart = ChartBuilder::on(panel)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(first..last, (lo - pad)..(hi + pad))
            .map_err(err)?;
        chart.configure_mesh().x_desc("epoch").light_line_style(RGBColor(235, 235, 235)).draw().map_err(err)?;
        for (side, colour, label) in [(0, train_colour, "train"), (1, val_colour, "validation")] {
            let style = colour.mix(opacity).stroke_width(width);
            for (i, history) in histories.iter().enumerate() {
                let values = if side == 0 { pick(history).0 } else { pick(history).1 };
                let points: Vec<(f64, f64)> = history
                    .epoch
                    .iter()
                    .zip(values.iter())
                    .filter(|(_, v)| v.is_finite())
                    .map(|(&e, &v)| (e, v))
                    .collect();
                let drawn = chart.draw_series(LineSeries::new(points, style)).map_err(err)?;
                if i == 0 {
                    drawn.label(label).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
                }
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .position(if name == "loss" { SeriesLabelPosition::UpperRight } else { SeriesLabelPosition::LowerRight })
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// Loss and accuracy per epoch, train against validation: one line of each per trained run.
pub fn curves_picture(name: &Path, histories: &[History]) -> Result<Picture> {
    let (width, height) = (1000, 420);
    render(name, width, height, |a| draw_curves(a, histories), |a| draw_curves(a, histories))
}
