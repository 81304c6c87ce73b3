//! Draws one [`Figure`] as an inline SVG with plotters' SVG backend: axes with ticks and labels,
//! a legend, log axes, Line / Points / Step / Reference (dashed) series. It never fails and never
//! panics on odd data: points that cannot be drawn (NaN, infinities, non-positive values on a log
//! axis) are left out and named in a note, empty or one-valued axes get a sensible range.
//!
//! Why plotters without a font feature: with `default-features = false` plotters uses its
//! built-in text size estimate (from the character count) for layout and writes each label as an
//! SVG `<text>` element that the browser sets in its own sans-serif. No system font is read and no
//! glyph is rasterised, so the same figure gives the same bytes on every machine; all coordinates
//! are whole pixels.

use super::numbers;
use crate::outcome::{Figure, SeriesStyle};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use std::ops::Range;

/// Size of every plot in pixels (the page scales it down on narrow screens).
const SIZE: (u32, u32) = (760, 420);

/// Series colours, in order (Okabe–Ito, readable by colour-blind readers; yellow left out).
const PALETTE: [RGBColor; 7] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0x00, 0x00, 0x00),
];

/// A figure drawn: the `<svg>` element (none only if plotters itself failed) and notes for the
/// reader about what could not be drawn.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Plot {
    /// The inline SVG.
    pub(super) svg: Option<String>,
    /// Sentences about points left out, empty figures or drawing errors.
    pub(super) notes: Vec<String>,
}

/// One series with only its drawable points, in drawing order.
struct Drawable<'a> {
    name: &'a str,
    style: SeriesStyle,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

/// Draws `figure`.
pub(super) fn draw(figure: &Figure) -> Plot {
    let mut notes = Vec::new();
    let drawables: Vec<Drawable> = figure
        .series
        .iter()
        .enumerate()
        .map(|(i, series)| {
            let points: Vec<(f64, f64)> = series
                .points
                .iter()
                .copied()
                .filter(|&(x, y)| drawable(x, figure.x_log) && drawable(y, figure.y_log))
                .collect();
            let left_out = series.points.len() - points.len();
            if left_out > 0 {
                let why = if figure.x_log || figure.y_log {
                    "not finite, or not positive on a log axis"
                } else {
                    "not finite"
                };
                notes.push(format!(
                    "Series “{}”: {left_out} of {} points not drawn ({why}).",
                    series.name,
                    series.points.len()
                ));
            }
            Drawable {
                name: &series.name,
                style: series.style,
                color: PALETTE[i % PALETTE.len()],
                points,
            }
        })
        .collect();
    if drawables.iter().all(|d| d.points.is_empty()) {
        notes.push("Nothing to draw: this figure has no drawable points.".into());
    }
    let x_values = drawables.iter().flat_map(|d| d.points.iter().map(|p| p.0));
    let y_values = drawables.iter().flat_map(|d| d.points.iter().map(|p| p.1));
    let x_range = axis_range(x_values, figure.x_log);
    let y_range = axis_range(y_values, figure.y_log);
    let legend = legend_corner(&drawables, &x_range, figure.x_log, &y_range, figure.y_log);

    let mut svg = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let result = match (figure.x_log, figure.y_log) {
            (false, false) => chart(&root, figure, &drawables, x_range, y_range, legend),
            (true, false) => chart(&root, figure, &drawables, x_range.log_scale(), y_range, legend),
            (false, true) => chart(&root, figure, &drawables, x_range, y_range.log_scale(), legend),
            (true, true) => chart(
                &root,
                figure,
                &drawables,
                x_range.log_scale(),
                y_range.log_scale(),
                legend,
            ),
        };
        result.and_then(|()| root.present().map_err(|e| e.to_string()))
    };
    match drawn {
        Ok(()) => Plot { svg: Some(svg), notes },
        Err(error) => {
            notes.push(format!("The figure could not be drawn: {error}."));
            Plot { svg: None, notes }
        }
    }
}

/// Whether a coordinate can be placed on an axis.
fn drawable(value: f64, log: bool) -> bool {
    value.is_finite() && (!log || value > 0.0)
}

/// The axis range for `values` (all drawable): a little margin around them on a linear axis,
/// whole decades on a log axis (so it always has labelled ticks); never empty or inverted.
fn axis_range(values: impl Iterator<Item = f64>, log: bool) -> Range<f64> {
    let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if min > max {
        return if log { 1.0..10.0 } else { 0.0..1.0 };
    }
    if log {
        let lo = 10f64.powf(min.log10().floor());
        let hi = 10f64.powf(max.log10().ceil());
        let hi = if hi > lo { hi } else { lo * 10.0 };
        return if lo > 0.0 && hi.is_finite() {
            lo..hi
        } else {
            min..max * 10.0
        };
    }
    let span = max - min;
    let margin = if span > max.abs().max(min.abs()) * 1e-9 && span.is_finite() {
        span * 0.05
    } else if max != 0.0 {
        max.abs() * 0.1
    } else {
        1.0
    };
    let (lo, hi) = (min - margin, max + margin);
    if lo.is_finite() && hi.is_finite() {
        lo..hi
    } else {
        min..max
    }
}

/// The corner of the plot with the fewest points, where the legend hides the least.
fn legend_corner(
    drawables: &[Drawable],
    x: &Range<f64>,
    x_log: bool,
    y: &Range<f64>,
    y_log: bool,
) -> SeriesLabelPosition {
    let fraction = |v: f64, range: &Range<f64>, log: bool| {
        if log {
            (v.ln() - range.start.ln()) / (range.end.ln() - range.start.ln())
        } else {
            (v - range.start) / (range.end - range.start)
        }
    };
    // Upper left, upper right, lower left, lower right.
    let mut counts = [0usize; 4];
    for &(px, py) in drawables.iter().flat_map(|d| d.points.iter()) {
        let right = fraction(px, x, x_log) > 0.5;
        let upper = fraction(py, y, y_log) > 0.5;
        counts[usize::from(!upper) * 2 + usize::from(right)] += 1;
    }
    let corners = [
        SeriesLabelPosition::UpperLeft,
        SeriesLabelPosition::UpperRight,
        SeriesLabelPosition::LowerLeft,
        SeriesLabelPosition::LowerRight,
    ];
    let best = (0..4).min_by_key(|&i| (counts[i], i)).unwrap_or(0);
    corners[best].clone()
}

/// Points of a step function drawn after each point (`y` holds until the next `x`), as CDFs are.
fn steps(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len() * 2);
    for (i, &point) in points.iter().enumerate() {
        if i > 0 {
            out.push((point.0, points[i - 1].1));
        }
        out.push(point);
    }
    out
}

/// Draws axes, series and legend on `root` with the given coordinate specs (linear or log).
fn chart<X, Y>(
    root: &DrawingArea<SVGBackend, Shift>,
    figure: &Figure,
    drawables: &[Drawable],
    x: X,
    y: Y,
    legend: SeriesLabelPosition,
) -> Result<(), String>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let error = |e: DrawingAreaErrorKind<std::io::Error>| e.to_string();
    root.fill(&WHITE).map_err(error)?;
    let mut chart = ChartBuilder::on(root)
        .margin(14)
        .margin_right(34)
        .x_label_area_size(46)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y)
        .map_err(error)?;
    let tick = |v: &f64| numbers::show(*v);
    chart
        .configure_mesh()
        .x_desc(figure.x_label.as_str())
        .y_desc(figure.y_label.as_str())
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15))
        .bold_line_style(RGBColor(0xDD, 0xDD, 0xDD))
        .light_line_style(RGBColor(0xF2, 0xF2, 0xF2))
        .draw()
        .map_err(error)?;

    for d in drawables {
        let line = ShapeStyle {
            color: d.color.to_rgba(),
            filled: false,
            stroke_width: 2,
        };
        let color = d.color;
        let points = d.points.iter().copied();
        let annotation = match d.style {
            SeriesStyle::Line => chart.draw_series(LineSeries::new(points, line)).map_err(error)?,
            SeriesStyle::Step => chart
                .draw_series(LineSeries::new(steps(&d.points), line))
                .map_err(error)?,
            SeriesStyle::Reference => chart
                .draw_series(DashedLineSeries::new(points, 8, 5, line))
                .map_err(error)?,
            SeriesStyle::Points => chart
                .draw_series(points.map(|p| Circle::new(p, 3, color.filled())))
                .map_err(error)?,
        };
        annotation.label(d.name);
        match d.style {
            SeriesStyle::Points => {
                annotation.legend(move |(lx, ly)| Circle::new((lx + 10, ly), 3, color.filled()));
            }
            SeriesStyle::Reference => {
                annotation.legend(move |(lx, ly)| {
                    EmptyElement::at((lx, ly))
                        + PathElement::new(vec![(0, 0), (7, 0)], line)
                        + PathElement::new(vec![(12, 0), (19, 0)], line)
                });
            }
            SeriesStyle::Line | SeriesStyle::Step => {
                annotation.legend(move |(lx, ly)| PathElement::new(vec![(lx, ly), (lx + 20, ly)], line));
            }
        }
    }
    if !drawables.is_empty() {
        chart
            .configure_series_labels()
            .position(legend)
            .label_font(("sans-serif", 13))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(0xAA, 0xAA, 0xAA))
            .draw()
            .map_err(error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample::{figure, series};

    fn stroke(color: RGBColor) -> String {
        format!("stroke=\"#{:02X}{:02X}{:02X}\"", color.0, color.1, color.2)
    }

    fn svg(figure: &Figure) -> String {
        let plot = draw(figure);
        plot.svg.unwrap_or_else(|| panic!("no svg: {:?}", plot.notes))
    }

    #[test]
    fn each_style_draws_its_elements() {
        let figure = figure(
            "styles",
            vec![
                series("line", SeriesStyle::Line, &[(1.0, 1.0), (2.0, 2.0), (3.0, 1.5)]),
                series("dots", SeriesStyle::Points, &[(1.0, 3.0), (2.0, 3.5), (3.0, 4.0)]),
                series("steps", SeriesStyle::Step, &[(1.0, 0.0), (2.0, 0.5), (3.0, 1.0)]),
                series("formula", SeriesStyle::Reference, &[(1.0, 4.0), (3.0, 0.0)]),
            ],
        );
        let plot = draw(&figure);
        assert!(plot.notes.is_empty(), "{:?}", plot.notes);
        let svg = plot.svg.expect("drawn");
        assert!(svg.starts_with("<svg "), "{}", &svg[..80]);
        let lines_of = |color| {
            svg.lines()
                .filter(|l| l.starts_with("<polyline") && l.contains(&stroke(color)))
                .count()
        };
        // Line: one polyline (plus its legend sample).
        assert_eq!(lines_of(PALETTE[0]), 2);
        // Points: three filled circles plus the legend's.
        let dots = svg
            .lines()
            .filter(|l| l.starts_with("<circle") && l.contains("fill=\"#D55E00\""))
            .count();
        assert_eq!(dots, 4);
        // Step: each rise is a vertical then a horizontal segment, so the polyline has 5 points.
        let step = svg
            .lines()
            .find(|l| l.starts_with("<polyline") && l.contains(&stroke(PALETTE[2])))
            .expect("step polyline");
        let points = step
            .split("points=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("points");
        let coords: Vec<(i32, i32)> = points
            .split_whitespace()
            .map(|p| {
                p.split_once(',')
                    .map(|(x, y)| (x.parse().expect("x"), y.parse().expect("y")))
                    .expect("x,y")
            })
            .collect();
        assert_eq!(coords.len(), 5, "{points}");
        assert_eq!(coords[0].1, coords[1].1, "flat before the first rise: {points}");
        assert_eq!(coords[1].0, coords[2].0, "then vertical: {points}");
        // Reference: many short dashes, not one line.
        assert!(lines_of(PALETTE[3]) > 10, "{}", lines_of(PALETTE[3]));
        for name in ["line", "dots", "steps", "formula", "peers", "time (s)"] {
            assert!(svg.contains(&format!(">\n{name}\n</text>")), "no text {name}");
        }
    }

    #[test]
    fn log_axes_get_decade_ticks() {
        let mut figure = figure(
            "log",
            vec![series("n", SeriesStyle::Line, &[(16.0, 4.0), (1024.0, 10.0)])],
        );
        figure.x_log = true;
        figure.y_log = true;
        let svg = svg(&figure);
        for tick in ["10", "100", "1000", "10000"] {
            assert!(svg.contains(&format!(">\n{tick}\n</text>")), "no tick {tick}");
        }
    }

    #[test]
    fn degenerate_figures_still_draw_with_notes() {
        let nan = f64::NAN;
        let cases = [
            ("no series", vec![]),
            ("empty series", vec![series("e", SeriesStyle::Line, &[])]),
            ("one point", vec![series("o", SeriesStyle::Points, &[(2.0, 5.0)])]),
            (
                "all equal",
                vec![series("q", SeriesStyle::Step, &[(1.0, 7.0), (1.0, 7.0), (1.0, 7.0)])],
            ),
            (
                "not finite",
                vec![series(
                    "n",
                    SeriesStyle::Line,
                    &[(nan, 1.0), (1.0, f64::INFINITY), (2.0, 3.0), (3.0, -1.0)],
                )],
            ),
            (
                "huge",
                vec![series("h", SeriesStyle::Reference, &[(-1e300, 1e300), (1e300, -1e300)])],
            ),
            (
                "tiny span",
                vec![series("t", SeriesStyle::Line, &[(1e9, 1.0), (1e9 + 1e-6, 1.0 + 1e-12)])],
            ),
        ];
        for (what, series) in cases {
            for (x_log, y_log) in [(false, false), (true, true)] {
                let mut fig = figure(what, series.clone());
                fig.x_log = x_log;
                fig.y_log = y_log;
                let plot = draw(&fig);
                assert!(plot.svg.is_some(), "{what} log={x_log}: {:?}", plot.notes);
            }
        }
        let mut fig = figure(
            "log",
            vec![series("n", SeriesStyle::Line, &[(0.0, 1.0), (-1.0, 2.0), (2.0, 3.0)])],
        );
        fig.x_log = true;
        let plot = draw(&fig);
        assert_eq!(
            plot.notes,
            ["Series “n”: 2 of 3 points not drawn (not finite, or not positive on a log axis)."]
        );
        let plot = draw(&figure("empty", vec![]));
        assert_eq!(plot.notes, ["Nothing to draw: this figure has no drawable points."]);
    }

    #[test]
    fn ranges_are_never_empty() {
        assert_eq!(axis_range([5.0, 5.0].into_iter(), false), 4.5..5.5);
        assert_eq!(axis_range([0.0].into_iter(), false), -1.0..1.0);
        assert_eq!(axis_range(std::iter::empty(), true), 1.0..10.0);
        assert_eq!(axis_range([100.0].into_iter(), true), 100.0..1000.0);
        assert_eq!(axis_range([2.0, 50.0].into_iter(), true), 1.0..100.0);
    }

    #[test]
    fn steps_hold_until_the_next_point() {
        assert_eq!(
            steps(&[(0.0, 0.0), (1.0, 0.5), (2.0, 1.0)]),
            [(0.0, 0.0), (1.0, 0.0), (1.0, 0.5), (2.0, 0.5), (2.0, 1.0)]
        );
        assert!(steps(&[]).is_empty());
    }

    #[test]
    fn drawing_is_deterministic() {
        let fig = figure("d", vec![series("s", SeriesStyle::Line, &[(0.1, 0.2), (0.7, 0.9)])]);
        assert_eq!(draw(&fig), draw(&fig));
    }
}
