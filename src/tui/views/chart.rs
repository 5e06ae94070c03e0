//! The chart that lays several runs over each other: one colour a run, a legend naming each
//! run, an optional cursor line. Shared by the Training and Faithfulness views.

use super::bounds;
use crate::tui::Overlay;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, LegendPosition, Widget};

/// Draws every run's series of `overlay` in the run's colour, the legend naming the runs (and
/// the series, where a run has several); `cursor` draws a vertical line at that x; `y_fixed`
/// widens the y range to include it; `label_x` and `label_y` write the axis labels.
#[allow(clippy::too_many_arguments)]
pub(crate) fn overlay_chart(
    area: Rect,
    buf: &mut Buffer,
    overlay: &[Overlay],
    title: &str,
    cursor: Option<f64>,
    y_fixed: Option<(f64, f64)>,
    label_x: &dyn Fn(f64) -> String,
    label_y: &dyn Fn(f64) -> String,
) {
    let points = || {
        overlay
            .iter()
            .flat_map(|o| &o.series)
            .flat_map(|s| &s.points)
    };
    let (Some((x0, x1)), Some((mut y0, mut y1))) =
        (bounds(points().map(|p| p.0)), bounds(points().map(|p| p.1)))
    else {
        return;
    };
    if let Some((a, b)) = y_fixed {
        (y0, y1) = (y0.min(a), y1.max(b));
    }
    let names: Vec<Vec<String>> = overlay
        .iter()
        .map(|o| {
            o.series
                .iter()
                .map(|s| {
                    if o.series.len() == 1 {
                        o.run.clone()
                    } else {
                        format!("{} {}", o.run, s.name)
                    }
                })
                .collect()
        })
        .collect();
    let line;
    let mut data: Vec<Dataset> = Vec::new();
    for (o, names) in overlay.iter().zip(&names) {
        for (s, name) in o.series.iter().zip(names) {
            data.push(
                Dataset::default()
                    .name(name.as_str())
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(Style::default().fg(o.color))
                    .data(&s.points),
            );
        }
    }
    if let Some(c) = cursor {
        line = [(c, y0), (c, y1)];
        data.push(
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(Color::DarkGray))
                .data(&line),
        );
    }
    Chart::new(data)
        .block(
            Block::default()
                .borders(Borders::TOP)
                .title(title.to_string()),
        )
        .legend_position(Some(LegendPosition::TopRight))
        .hidden_legend_constraints((
            ratatui::layout::Constraint::Percentage(60),
            ratatui::layout::Constraint::Percentage(60),
        ))
        .x_axis(
            Axis::default()
                .bounds([x0, x1])
                .labels([label_x(x0), label_x(x1)]),
        )
        .y_axis(
            Axis::default()
                .bounds([y0, y1])
                .labels([label_y(y0), label_y(y1)]),
        )
        .render(area, buf);
}
