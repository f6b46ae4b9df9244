//! The client page's plots, drawn on the server as SVG with `plotters`.
//!
//! All plots of a page share one time axis ([`TimeAxis`]), so a reading, a
//! score and a side effect on the same day line up. Each SVG is labelled
//! for assistive technology (`role="img"` and a name); the page puts the
//! same values in a table beside it.

use chrono::{DateTime, Utc};
use katcore::instruments::Band;
use katcore::pack::InstrumentKind;
use katcore::record::Severity;
use katcore::zone::Zone;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Plot width and height, in SVG user units (CSS scales them to the page);
/// the side-effect strip is lower.
const SIZE: (u32, u32) = (760, 240);
/// Systolic points and line.
const SYSTOLIC: RGBColor = RGBColor(0x1f, 0x4e, 0x79);
/// Diastolic points and line.
const DIASTOLIC: RGBColor = RGBColor(0x2a, 0x7f, 0x62);
/// The clinic's limit.
const LIMIT: RGBColor = RGBColor(0xb3, 0x5c, 0x00);
/// The urgent limit.
const URGENT: RGBColor = RGBColor(0xb0, 0x00, 0x20);
/// Totals of a questionnaire.
const SCORE: RGBColor = RGBColor(0x3b, 0x2f, 0x7a);

/// The time span every plot of a page shares, in days since the Unix epoch.
#[derive(Clone, Debug)]
pub(crate) struct TimeAxis {
    start: f64,
    end: f64,
    zone: Zone,
}

impl TimeAxis {
    /// The span from the earliest of `instants` (at most a year back) to
    /// the latest of them and `now`, with a day of room on each side; at
    /// least two weeks. Instants dated ahead of the clinic's clock
    /// (`clock.rs`) are left out: one phone set years ahead would otherwise
    /// squeeze every real reading into one edge.
    pub(crate) fn around(instants: impl IntoIterator<Item = DateTime<Utc>>, now: DateTime<Utc>, zone: Zone) -> Self {
        let instants: Vec<f64> = instants.into_iter().filter(|at| !crate::clock::ahead(*at, now)).map(days).collect();
        let end = instants.iter().copied().fold(days(now), f64::max) + 1.0;
        let floor = end - 366.0;
        let start = instants.iter().copied().filter(|day| *day >= floor).fold(end - 15.0, f64::min) - 1.0;
        TimeAxis { start, end, zone }
    }

    fn label(&self, day: &f64) -> String {
        let seconds = (day * 86_400.0) as i64;
        DateTime::<Utc>::from_timestamp(seconds, 0)
            .map(|t| t.with_timezone(&self.zone).format("%-d %b").to_string())
            .unwrap_or_default()
    }

    fn contains(&self, t: DateTime<Utc>) -> bool {
        (self.start..=self.end).contains(&days(t))
    }
}

/// An instant in (fractional) days since the Unix epoch.
fn days(t: DateTime<Utc>) -> f64 {
    t.timestamp() as f64 / 86_400.0
}

/// What drawing on an SVG can fail with.
type PlotError = DrawingAreaErrorKind<std::io::Error>;

/// Draws with `draw` on a fresh SVG and names it `title` for assistive
/// technology; `None` (logged) if plotting failed.
fn svg(
    title: &str,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), PlotError>,
) -> Option<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        if let Err(e) = root.fill(&WHITE).map_err(|e| e.to_string()).and_then(|()| {
            draw(&root).map_err(|e| e.to_string())?;
            root.present().map_err(|e| e.to_string())
        }) {
            tracing::warn!(error = %e, "a dashboard plot could not be drawn");
            return None;
        }
    }
    let named = format!("<svg role=\"img\" aria-label=\"{}\" ", title.replace('"', "'"));
    Some(out.replacen("<svg ", &named, 1))
}

/// One blood-pressure reading to plot.
pub(crate) struct Reading {
    /// When it was taken.
    pub(crate) at: DateTime<Utc>,
    /// Systolic, mmHg.
    pub(crate) systolic: u16,
    /// Diastolic, mmHg.
    pub(crate) diastolic: u16,
}

/// Systolic and diastolic readings over time, with the clinic's limit and
/// urgent limit drawn as dashed lines for each (the page's caption is the
/// legend: its colours are those of `dashboard.css`).
pub(crate) fn blood_pressure(
    readings: &[Reading],
    limit: (u16, u16),
    urgent: (u16, u16),
    axis: &TimeAxis,
) -> Option<String> {
    let readings: Vec<&Reading> = readings.iter().filter(|r| axis.contains(r.at)).collect();
    let top = readings.iter().map(|r| r.systolic).chain([urgent.0, urgent.1]).max().unwrap_or(200);
    let y_max = f64::from(top) + 20.0;
    let y_min = readings.iter().map(|r| r.diastolic).min().map_or(40.0, |d| f64::from(d.min(60)) - 10.0);
    svg("Blood pressure over time, with the clinic's limit and urgent limit", SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(44)
            .build_cartesian_2d(axis.start..axis.end, y_min..y_max)?;
        chart
            .configure_mesh()
            .x_labels(8)
            .x_label_formatter(&|d| axis.label(d))
            .y_desc("mmHg")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .light_line_style(TRANSPARENT)
            .draw()?;
        let span = [axis.start, axis.end];
        let limits = [
            (limit.0, LIMIT, format!("Limit {}/{}", limit.0, limit.1)),
            (limit.1, LIMIT, String::new()),
            (urgent.0, URGENT, format!("Urgent {}/{}", urgent.0, urgent.1)),
            (urgent.1, URGENT, String::new()),
        ];
        for (value, color, name) in limits {
            let line = span.iter().map(|x| (*x, f64::from(value)));
            chart.draw_series(DashedLineSeries::new(line, 6, 4, color.stroke_width(2)))?;
            if !name.is_empty() {
                // Named at the line's left end: the axis starts a day before
                // the first reading, and the newest readings are on the right.
                let label_at = (axis.start + (axis.end - axis.start) * 0.004, f64::from(value) + 1.5);
                let style = ("sans-serif", 14).into_font().color(&color);
                chart.draw_series([Text::new(name, label_at, style)])?;
            }
        }
        for (color, value) in
            [(SYSTOLIC, (|r: &Reading| r.systolic) as fn(&Reading) -> u16), (DIASTOLIC, |r: &Reading| r.diastolic)]
        {
            let points: Vec<(f64, f64)> = readings.iter().map(|r| (days(r.at), f64::from(value(r)))).collect();
            chart.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?;
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 4, color.filled())))?;
        }
        Ok(())
    })
}

/// The severity bands of an instrument's total: (from, to, name).
pub(crate) fn bands(instrument: InstrumentKind) -> Vec<(u8, u8, Band)> {
    match instrument {
        InstrumentKind::Phq9 => vec![
            (0, 4, Band::Minimal),
            (5, 9, Band::Mild),
            (10, 14, Band::Moderate),
            (15, 19, Band::ModeratelySevere),
            (20, 27, Band::Severe),
        ],
        InstrumentKind::Gad7 => {
            vec![(0, 4, Band::Minimal), (5, 9, Band::Mild), (10, 14, Band::Moderate), (15, 21, Band::Severe)]
        }
    }
}

/// Totals of one instrument over time, over its severity bands.
pub(crate) fn scores(instrument: InstrumentKind, totals: &[(DateTime<Utc>, u8)], axis: &TimeAxis) -> Option<String> {
    let bands = bands(instrument);
    let max = bands.last().map_or(27, |band| band.1);
    let name = match instrument {
        InstrumentKind::Phq9 => "PHQ-9",
        InstrumentKind::Gad7 => "GAD-7",
    };
    let title = format!("{name} totals over time, over the severity bands");
    svg(&title, SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(44)
            .build_cartesian_2d(axis.start..axis.end, 0f64..f64::from(max) + 0.5)?;
        // Bands from pale to deep: the deeper, the more severe.
        let shades = [0.04, 0.10, 0.18, 0.26, 0.34];
        for (index, (from, to, band)) in bands.iter().enumerate() {
            let shade = URGENT.mix(shades[index.min(shades.len() - 1)]);
            let bottom = f64::from(*from) - 0.5;
            let top = f64::from(*to) + 0.5;
            chart.draw_series([Rectangle::new([(axis.start, bottom.max(0.0)), (axis.end, top)], shade.filled())])?;
            chart.draw_series([Text::new(
                crate::wording::band_name(*band).to_owned(),
                (axis.start + (axis.end - axis.start) * 0.005, top - 0.3),
                ("sans-serif", 15).into_font().color(&BLACK.mix(0.7)),
            )])?;
        }
        chart
            .configure_mesh()
            .x_labels(8)
            .x_label_formatter(&|d| axis.label(d))
            .y_desc("Total")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .disable_y_mesh()
            .light_line_style(TRANSPARENT)
            .draw()?;
        let points: Vec<(f64, f64)> = totals
            .iter()
            .filter(|(at, _)| axis.contains(*at))
            .map(|(at, total)| (days(*at), f64::from(*total)))
            .collect();
        chart.draw_series(LineSeries::new(points.clone(), SCORE.stroke_width(2)))?;
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 4, SCORE.filled())))?;
        Ok(())
    })
}

/// Side effects on the same time axis, one row per severity.
pub(crate) fn side_effects(reports: &[(DateTime<Utc>, Severity)], axis: &TimeAxis) -> Option<String> {
    let level = |severity: Severity| match severity {
        Severity::Mild => 1.0,
        Severity::Moderate => 2.0,
        Severity::Severe => 3.0,
    };
    svg("Side effects over time, by severity", (SIZE.0, 150), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(70)
            .build_cartesian_2d(axis.start..axis.end, 0.5f64..3.5)?;
        chart
            .configure_mesh()
            .x_labels(8)
            .x_label_formatter(&|d| axis.label(d))
            .y_labels(3)
            .y_label_formatter(&|y| match y.round() as i64 {
                1 => "mild".into(),
                2 => "moderate".into(),
                3 => "severe".into(),
                _ => String::new(),
            })
            .disable_y_mesh()
            .light_line_style(TRANSPARENT)
            .draw()?;
        chart.draw_series(reports.iter().filter(|(at, _)| axis.contains(*at)).map(|(at, severity)| {
            let color = if *severity == Severity::Severe { URGENT } else { LIMIT };
            TriangleMarker::new((days(*at), level(*severity)), 6, color.filled())
        }))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn axis() -> TimeAxis {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        TimeAxis::around([now - chrono::Duration::days(30)], now, Zone::named("UTC").unwrap())
    }

    #[test]
    fn the_blood_pressure_plot_draws_readings_and_both_limits() {
        let at = Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap();
        let svg =
            blood_pressure(&[Reading { at, systolic: 186, diastolic: 112 }], (140, 90), (180, 120), &axis()).unwrap();
        assert!(svg.starts_with("<svg role=\"img\" aria-label=\"Blood pressure"), "{}", &svg[..80]);
        assert!(svg.contains("Limit 140/90") && svg.contains("Urgent 180/120"));
        assert!(svg.contains("<circle"), "the reading is drawn");
        assert!(svg.contains("#B00020") || svg.contains("#b00020"), "the urgent line has its colour");
    }

    #[test]
    fn a_reading_dated_years_ahead_does_not_stretch_the_axis() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let zone = Zone::named("UTC").unwrap();
        let month = [now - chrono::Duration::days(30), now - chrono::Duration::days(1)];
        let plain = TimeAxis::around(month, now, zone.clone());
        let ahead = TimeAxis::around(month.into_iter().chain([now + chrono::Duration::days(730)]), now, zone.clone());
        assert_eq!((ahead.start, ahead.end), (plain.start, plain.end));
        assert!(!ahead.contains(now + chrono::Duration::days(730)), "left off the plot");
        // Within the tolerance a time is taken as written.
        let soon = TimeAxis::around([now + chrono::Duration::minutes(5)], now, zone);
        assert!(soon.contains(now + chrono::Duration::minutes(5)));
    }

    #[test]
    fn score_plots_name_every_band() {
        let at = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
        let svg = scores(InstrumentKind::Phq9, &[(at, 21)], &axis()).unwrap();
        for band in ["minimal", "mild", "moderate", "moderately severe", "severe"] {
            assert!(svg.contains(&format!("\n{band}\n")), "{band}");
        }
        let gad = scores(InstrumentKind::Gad7, &[], &axis()).unwrap();
        assert!(!gad.contains("moderately severe"));
    }
}
