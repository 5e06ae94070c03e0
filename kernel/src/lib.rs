//! Rich display of circuitscope's results in evcxr Jupyter notebooks: graphs (the same layered
//! SVG as `graph.svg`), curves and scatter plots (plotters, SVG backend only), polars tables and
//! probe reports as HTML.
//!
//! Every picture is made by a plain function returning [`Svg`] or [`Html`] (tested by cargo);
//! those two types carry an `evcxr_display` method, the evcxr convention for showing a value
//! as a MIME bundle (`EVCXR_BEGIN_CONTENT image/svg+xml` ... `EVCXR_END_CONTENT`). This crate
//! only draws: it must never train, write files or change what it is given.
//!
//! In a notebook started with the "Rust (circuitscope)" kernel (`circuitscope kernel install`)
//! this crate and circuitscope are already loaded; one line, `use circuitscope_kernel::prelude::*;`,
//! is the whole set-up (the kernel's prelude runs it).

use circuitscope::graph::CircuitGraph;
use circuitscope::polars::prelude::{AnyValue, DataFrame};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

/// The usual imports of a notebook.
pub mod prelude {
    pub use super::{
        communities_table, curve_svg, graph_svg, probe_html, scatter_svg, table_html, training_svg,
        Html, Series, Svg, TableExt,
    };
    pub use circuitscope;
    pub use circuitscope::polars::prelude::DataFrame;
}

/// An SVG image; shown inline by evcxr.
#[derive(Debug, Clone, PartialEq)]
pub struct Svg(pub String);

/// An HTML fragment; shown inline by evcxr.
#[derive(Debug, Clone, PartialEq)]
pub struct Html(pub String);

impl Svg {
    /// evcxr calls this to show the value of a cell.
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT image/svg+xml\n{}\nEVCXR_END_CONTENT",
            self.0
        );
    }
}

impl Html {
    /// evcxr calls this to show the value of a cell.
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT",
            self.0
        );
    }
}

/// Escapes text for HTML and XML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A graph as the layered SVG of `circuitscope graph` (`graph.svg`), with at most `top` edges.
pub fn graph_svg(g: &CircuitGraph, top: Option<usize>) -> Svg {
    let mut buf = Vec::new();
    circuitscope::graph::export::write_svg(g, &mut buf, top).expect("writing to memory");
    Svg(String::from_utf8(buf).expect("the exporter writes UTF-8"))
}

/// One named line of a plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.into(),
            points,
        }
    }
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return (0.0, 1.0);
    }
    if lo == hi {
        return (lo - 0.5, hi + 0.5);
    }
    let pad = 0.03 * (hi - lo);
    (lo - pad, hi + pad)
}

/// An SVG of `size` on a white background, drawn by `draw`.
fn plot(size: (u32, u32), draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>)) -> Svg {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE).expect("svg");
        draw(&root);
        root.present().expect("svg");
    }
    Svg(out)
}

/// A chart on `root`: `title`, label areas `(x, y)` wide, the axes' ranges.
fn axes<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
    (x_area, y_area): (u32, u32),
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>> {
    ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(x_area)
        .y_label_area_size(y_area)
        .build_cartesian_2d(x0..x1, y0..y1)
        .expect("svg")
}

/// The legend of every labelled series.
fn legend<'a, 'b: 'a>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
) {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .expect("svg");
}

/// A line plot (faithfulness vs sparsity, training curves): one line per series, a legend,
/// labelled axes. `log_y` plots log10 of y (non-positive values are dropped).
pub fn curve_svg(title: &str, x_label: &str, y_label: &str, series: &[Series], log_y: bool) -> Svg {
    let series: Vec<Series> = series
        .iter()
        .map(|s| Series {
            name: s.name.clone(),
            points: s
                .points
                .iter()
                .filter(|p| p.0.is_finite() && p.1.is_finite() && (!log_y || p.1 > 0.0))
                .map(|&(x, y)| (x, if log_y { y.log10() } else { y }))
                .collect(),
        })
        .collect();
    let (x0, x1) = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let (y0, y1) = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    plot((640, 400), |root| {
        let mut chart = axes(root, title, (40, 60), (x0, x1), (y0, y1));
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(if log_y {
                format!("log10 {y_label}")
            } else {
                y_label.to_string()
            })
            .draw()
            .expect("svg");
        for (i, s) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    color.stroke_width(2),
                ))
                .expect("svg")
                .label(s.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
        }
        legend(&mut chart);
    })
}

/// A scatter plot of labelled points (`(x, y, label)`), one colour per label, with a legend
/// naming each label by `names[label]` (or its number).
pub fn scatter_svg(title: &str, points: &[(f64, f64, usize)], names: &[String]) -> Svg {
    let (x0, x1) = range(points.iter().map(|p| p.0));
    let (y0, y1) = range(points.iter().map(|p| p.1));
    let mut labels: Vec<usize> = points.iter().map(|p| p.2).collect();
    labels.sort_unstable();
    labels.dedup();
    plot((560, 440), |root| {
        let mut chart = axes(root, title, (36, 50), (x0, x1), (y0, y1));
        chart.configure_mesh().draw().expect("svg");
        for &l in &labels {
            let color = Palette99::pick(l).to_rgba();
            let name = names.get(l).cloned().unwrap_or_else(|| l.to_string());
            chart
                .draw_series(
                    points
                        .iter()
                        .filter(|p| p.2 == l)
                        .map(|p| Circle::new((p.0, p.1), 3, color.filled())),
                )
                .expect("svg")
                .label(name)
                .legend(move |(x, y)| Circle::new((x + 6, y), 3, color.filled()));
        }
        legend(&mut chart);
    })
}

/// A run's training curves from its event log: per task, the training loss of each logged
/// step and the validation loss of each evaluation, on a log scale.
pub fn training_svg(run: &circuitscope::runlog::RunDir) -> circuitscope::Result<Svg> {
    use circuitscope::runlog::{follow, Event};
    let mut train: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut val: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for e in follow::read_all(&run.events())? {
        let step = e.step.unwrap_or(0) as f64;
        match e.event {
            Event::TrainStep { losses, .. } => {
                if train.len() < losses.len() {
                    train.resize(losses.len(), Vec::new());
                }
                for (t, l) in losses.into_iter().enumerate() {
                    train[t].push((step, l));
                }
            }
            Event::Eval { tasks, .. } => {
                for m in tasks {
                    match val.iter_mut().find(|(n, _)| *n == m.task) {
                        Some((_, pts)) => pts.push((step, m.loss)),
                        None => val.push((m.task, vec![(step, m.loss)])),
                    }
                }
            }
            _ => {}
        }
    }
    if train.is_empty() && val.is_empty() {
        return Err(circuitscope::Error::Invalid(format!(
            "{}: no training events in this log",
            run.events().display()
        )));
    }
    let mut series: Vec<Series> = train
        .into_iter()
        .enumerate()
        .map(|(t, pts)| Series::new(format!("task{t} train"), pts))
        .collect();
    series.extend(
        val.into_iter()
            .map(|(name, pts)| Series::new(format!("{name} validation"), pts)),
    );
    Ok(curve_svg("training", "step", "loss", &series, true))
}

/// Rows shown by [`table_html`] before it says how many it left out.
pub const MAX_ROWS: usize = 60;

/// A polars DataFrame as an HTML table: a header of column names (with dtypes), at most
/// [`MAX_ROWS`] rows, and a note of the rows left out.
pub fn table_html(df: &DataFrame) -> Html {
    let mut s = String::from("<table class=\"circuitscope\">\n<thead><tr>");
    for c in df.get_columns() {
        s.push_str(&format!(
            "<th title=\"{}\">{}</th>",
            escape(&c.dtype().to_string()),
            escape(c.name())
        ));
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    let n = df.height().min(MAX_ROWS);
    for i in 0..n {
        s.push_str("<tr>");
        for c in df.get_columns() {
            let v = c.get(i).unwrap_or(AnyValue::Null);
            let text = match v {
                AnyValue::Null => String::new(),
                AnyValue::Float64(x) => format_float(x),
                AnyValue::Float32(x) => format_float(x as f64),
                AnyValue::String(x) => x.to_string(),
                other => other.to_string(),
            };
            s.push_str(&format!("<td>{}</td>", escape(&text)));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody>\n</table>\n");
    if df.height() > n {
        s.push_str(&format!(
            "<p><i>{} of {} rows shown</i></p>\n",
            n,
            df.height()
        ));
    }
    Html(s)
}

fn format_float(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    if !(1e-3..1e5).contains(&a) {
        format!("{x:.4e}")
    } else {
        format!("{x:.4}")
    }
}

/// `df.html()` shows a DataFrame (a foreign type) as an HTML table.
pub trait TableExt {
    fn html(&self) -> Html;
}

impl TableExt for DataFrame {
    fn html(&self) -> Html {
        table_html(self)
    }
}

/// A graph's communities: per community, its nodes, how many sit in each layer, and (for
/// graphs with per-task attributions) the mean task share of its nodes per task.
pub fn communities_table(g: &CircuitGraph) -> DataFrame {
    use circuitscope::polars::prelude::Column;
    let k = g.communities;
    let mut nodes = vec![0u32; k];
    let mut layers = vec![std::collections::BTreeMap::<usize, usize>::new(); k];
    let mut share = vec![vec![0.0f64; g.tasks.len()]; k];
    for n in g.graph.node_weights() {
        if n.community >= k {
            continue;
        }
        nodes[n.community] += 1;
        *layers[n.community].entry(n.layer).or_default() += 1;
        for (t, s) in n.task_share.iter().enumerate().take(g.tasks.len()) {
            share[n.community][t] += s;
        }
    }
    let mut cols = vec![
        Column::new("community".into(), (0..k as u32).collect::<Vec<_>>()),
        Column::new("nodes".into(), nodes.clone()),
        Column::new(
            "per_layer".into(),
            layers
                .iter()
                .map(|m| {
                    m.iter()
                        .map(|(l, c)| format!("h{l}:{c}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect::<Vec<_>>(),
        ),
    ];
    for (t, name) in g.tasks.iter().enumerate() {
        cols.push(Column::new(
            format!("share_{name}").into(),
            (0..k)
                .map(|c| share[c][t] / nodes[c].max(1) as f64)
                .collect::<Vec<_>>(),
        ));
    }
    DataFrame::new(cols).expect("columns of equal length")
}

/// A probe report: each of its tables under a heading.
pub fn probe_html(r: &circuitscope::probe::ProbeReport) -> Html {
    let mut s = String::new();
    for (name, df) in r.named_tables() {
        s.push_str(&format!("<h4>{}</h4>\n", escape(name)));
        s.push_str(&table_html(df).0);
    }
    Html(s)
}
