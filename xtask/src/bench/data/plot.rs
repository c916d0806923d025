//! The p99 curves as an SVG: latency against a user's task count, one line per query kind.
//!
//! plotters' SVG back end writes text as `<text>` elements for the viewer to set, so no font
//! files or font libraries are needed to draw it.

use plotters::prelude::*;

use super::Kind;

/// One curve: a query kind and its (task count, p99 ms) points, in ascending task count.
pub(super) struct Curve {
    pub(super) kind: Kind,
    pub(super) points: Vec<(f64, f64)>,
}

/// Line colours, one per kind in [`Kind::ALL`] order (distinguishable in print and for the
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
pub(super) fn svg(title: &str, curves: &[Curve]) -> anyhow::Result<String> {
    let xs = || curves.iter().flat_map(|c| c.points.iter().map(|p| p.0));
    let x_min = xs().fold(f64::INFINITY, f64::min);
    let x_max = xs().fold(0.0, f64::max);
    anyhow::ensure!(
        x_min.is_finite() && x_min > 0.0,
        "nothing to plot: no positive task counts"
    );
    // A single size still gets a readable axis: a decade either side.
    let (x_min, x_max) = if x_max > x_min {
        (x_min, x_max)
    } else {
        (x_min / 10.0, x_max * 10.0)
    };
    let y_max = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.1))
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.15;

    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (900, 540)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(60)
            .build_cartesian_2d((x_min..x_max).log_scale(), 0.0..y_max)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("tasks of the user (log scale)")
            .y_desc("p99 latency, ms")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(plot_error)?;
        for (i, curve) in curves.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let style = ShapeStyle::from(colour).stroke_width(2);
            chart
                .draw_series(LineSeries::new(curve.points.iter().copied(), style))
                .map_err(plot_error)?
                .label(curve.kind.label())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
            chart
                .draw_series(
                    curve
                        .points
                        .iter()
                        .map(|&p| Circle::new(p, 3, colour.filled())),
                )
                .map_err(plot_error)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    Ok(out)
}

/// plotters' errors borrow the back end's error type; the message is what we keep.
fn plot_error<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the chart: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_one_path_per_curve_with_its_legend() {
        let curves: Vec<Curve> = Kind::ALL
            .iter()
            .map(|&kind| Curve {
                kind,
                points: vec![(1000.0, 2.0), (10_000.0, 3.5), (100_000.0, 9.0)],
            })
            .collect();
        let svg = svg("p99 by size", &curves).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        assert!(svg.len() > 2000);
        for kind in Kind::ALL {
            assert!(svg.contains(kind.label()), "no legend for {kind:?}");
        }
        assert!(svg.matches("<polyline").count() >= Kind::ALL.len());
    }

    #[test]
    fn one_size_still_draws_and_no_points_is_an_error() {
        let one = [Curve {
            kind: Kind::List,
            points: vec![(100.0, 1.0)],
        }];
        assert!(svg("one", &one).is_ok());
        assert!(svg("none", &[]).is_err());
    }
}
