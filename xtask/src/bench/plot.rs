//! The bench's pictures: line charts as SVG documents, one line per curve, drawn with plotters.
//!
//! plotters' SVG back end writes text as `<text>` elements for the viewer to set, so no font
//! files or font libraries are needed to draw it.

use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;

/// One line: its legend and its (x, y) points, in ascending x.
pub(super) struct Curve {
    pub(super) label: String,
    pub(super) points: Vec<(f64, f64)>,
}

/// What the chart says around its lines.
pub(super) struct Chart<'a> {
    pub(super) title: &'a str,
    pub(super) x_desc: &'a str,
    pub(super) y_desc: &'a str,
    /// A logarithmic x axis (sizes that grow tenfold), else a linear one from 0.
    pub(super) log_x: bool,
    /// A logarithmic y axis (latencies from milliseconds to seconds), else a linear one from 0.
    pub(super) log_y: bool,
}

/// Line colours, one per curve in order (distinguishable in print and for the
/// common colour-vision deficiencies: the Okabe–Ito palette).
const COLOURS: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(213, 94, 0),
    RGBColor(86, 180, 233),
];

/// Draws `curves` and returns the SVG document.
pub(super) fn svg(chart: &Chart<'_>, curves: &[Curve]) -> anyhow::Result<String> {
    let xs = || curves.iter().flat_map(|c| c.points.iter().map(|p| p.0));
    let x_min = xs().fold(f64::INFINITY, f64::min);
    let x_max = xs().fold(0.0, f64::max);
    anyhow::ensure!(
        x_min.is_finite() && (x_min > 0.0 || !chart.log_x),
        "nothing to plot: no points (or no positive x on a log axis)"
    );
    // A single x still gets a readable axis: a decade either side on a log axis; a linear axis
    // starts at 0.
    let (x_min, x_max) = match (x_max > x_min, chart.log_x) {
        (true, true) => (x_min, x_max),
        (false, true) => (x_min / 10.0, x_max * 10.0),
        (_, false) => (0.0, (x_max * 1.05).max(1.0)),
    };
    let ys = || curves.iter().flat_map(|c| c.points.iter().map(|p| p.1));
    let y_max = ys().fold(0.0, f64::max).max(1.0) * 1.15;
    // A log axis starts a little below the smallest positive value (0 has no place on it).
    let y_min = if chart.log_y {
        ys().filter(|y| *y > 0.0).fold(y_max, f64::min) / 1.5
    } else {
        0.0
    };

    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (900, 540)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(chart.title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(60);
        // Each combination of axes is its own coordinate type.
        let (xs, ys) = (x_min..x_max, y_min..y_max);
        match (chart.log_x, chart.log_y) {
            (false, false) => draw_lines(builder.build_cartesian_2d(xs, ys), chart, curves)?,
            (true, false) => {
                draw_lines(
                    builder.build_cartesian_2d(xs.log_scale(), ys),
                    chart,
                    curves,
                )?;
            }
            (false, true) => {
                draw_lines(
                    builder.build_cartesian_2d(xs, ys.log_scale()),
                    chart,
                    curves,
                )?;
            }
            (true, true) => draw_lines(
                builder.build_cartesian_2d(xs.log_scale(), ys.log_scale()),
                chart,
                curves,
            )?,
        }
        root.present().map_err(plot_error)?;
    }
    Ok(out)
}

/// The mesh, the lines with their points, and the legend, on any kind of axes.
fn draw_lines<'a, X, Y, E>(
    area: Result<ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>, E>,
    chart: &Chart<'_>,
    curves: &[Curve],
) -> anyhow::Result<()>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    E: std::fmt::Display,
{
    let mut area = area.map_err(plot_error)?;
    area.configure_mesh()
        .x_desc(chart.x_desc)
        .y_desc(chart.y_desc)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| {
            if *y >= 10.0 || *y == 0.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.1}")
            }
        })
        .draw()
        .map_err(plot_error)?;
    // 0 has no place on a log axis: such points are left out of the line.
    let shown = |p: &&(f64, f64)| (p.0 > 0.0 || !chart.log_x) && (p.1 > 0.0 || !chart.log_y);
    for (i, curve) in curves.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let style = ShapeStyle::from(colour).stroke_width(2);
        let points = || curve.points.iter().filter(shown).copied();
        area.draw_series(LineSeries::new(points(), style))
            .map_err(plot_error)?
            .label(curve.label.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        area.draw_series(points().map(|p| Circle::new(p, 3, colour.filled())))
            .map_err(plot_error)?;
    }
    area.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)?;
    Ok(())
}

/// plotters' errors borrow the back end's error type; the message is what we keep.
fn plot_error<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the chart: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: Chart<'static> = Chart {
        title: "p99 by size",
        x_desc: "tasks",
        y_desc: "ms",
        log_x: true,
        log_y: false,
    };

    fn curves(n: usize) -> Vec<Curve> {
        (0..n)
            .map(|i| Curve {
                label: format!("curve {i}"),
                points: vec![(1000.0, 2.0), (10_000.0, 3.5 + i as f64), (100_000.0, 9.0)],
            })
            .collect()
    }

    #[test]
    fn draws_one_path_per_curve_with_its_legend() {
        for chart in [
            LOG,
            Chart {
                log_x: false,
                ..LOG
            },
        ] {
            let svg = svg(&chart, &curves(6)).unwrap();
            assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
            for i in 0..6 {
                assert!(svg.contains(&format!("curve {i}")), "no legend for {i}");
            }
            assert!(svg.matches("<polyline").count() >= 6);
        }
    }

    #[test]
    fn one_point_still_draws_and_no_points_is_an_error() {
        let one = [Curve {
            label: "one".into(),
            points: vec![(100.0, 1.0)],
        }];
        assert!(svg(&LOG, &one).is_ok());
        assert!(
            svg(
                &Chart {
                    log_x: false,
                    ..LOG
                },
                &one
            )
            .is_ok()
        );
        assert!(svg(&LOG, &[]).is_err());
    }
}
