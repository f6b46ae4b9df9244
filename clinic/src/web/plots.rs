//! The client page's plots, drawn on the server as SVG with `plotters`.
//!
//! All plots of a page share one time axis ([`TimeAxis`]), so a reading, a
//! score and a side effect on the same day line up. Each SVG is labelled
//! for assistive technology (`role="img"` and a name); the page puts the
//! same values in a table beside it.

use chrono::{DateTime, Datelike, Utc};
use katcore::instruments::Band;
use katcore::pack::InstrumentKind;
use katcore::record::Severity;
use katcore::zone::Zone;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Plot width and height, in SVG user units (CSS scales them to the page,
/// at most 760 px wide); the side-effect strip is lower. Small, so that
/// [`TEXT`] stays legible when a phone shows the plot 360 px wide.
const SIZE: (u32, u32) = (560, 270);
/// Every text's size as `plotters` takes it (its SVG writes `font-size`
/// at 1/1.24 of it, 17.7 user units): about 11 px on a 390-px phone, 24 px
/// at the widest.
const TEXT: u32 = 22;
/// Room right of every plot (for the blood-pressure plot's line labels;
/// the others keep it too, so one day sits at one x on every plot).
const LINE_LABELS: u32 = 104;
/// Room left of every plot for the values' labels and title.
const VALUE_LABELS: u32 = 4 * TEXT + 4;
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
    /// Instants left off because they are dated ahead of the clinic's clock.
    ahead: usize,
    /// Instants left off because they are older than the plotted year.
    older: usize,
}

impl TimeAxis {
    /// The span from the earliest of `instants` (at most a year back) to
    /// the latest of them and `now`, with a day of room on each side; at
    /// least two weeks. The window is chosen from the credible instants
    /// only: those dated ahead of the clinic's clock (`clock.rs`) are left
    /// out (one phone set years ahead would otherwise squeeze every real
    /// reading into one edge), as are those more than a year older than the
    /// newest; [`TimeAxis::left_out`] counts both, for the page to say so.
    pub(crate) fn around(instants: impl IntoIterator<Item = DateTime<Utc>>, now: DateTime<Utc>, zone: Zone) -> Self {
        let (ahead, credible): (Vec<DateTime<Utc>>, Vec<DateTime<Utc>>) =
            instants.into_iter().partition(|at| crate::clock::ahead(*at, now));
        let instants: Vec<f64> = credible.into_iter().map(days).collect();
        let end = instants.iter().copied().fold(days(now), f64::max) + 1.0;
        let floor = end - 366.0;
        let start = instants.iter().copied().filter(|day| *day >= floor).fold(end - 15.0, f64::min) - 1.0;
        let older = instants.iter().filter(|day| **day < start).count();
        TimeAxis { start, end, zone, ahead: ahead.len(), older }
    }

    /// How many instants the plots leave off: (dated ahead of the clinic's
    /// clock, older than the plotted year).
    pub(crate) fn left_out(&self) -> (usize, usize) {
        (self.ahead, self.older)
    }

    /// The calendar year of `day` in the axis's zone.
    fn year(&self, day: f64) -> i32 {
        instant(day).map_or(1970, |t| t.with_timezone(&self.zone).year())
    }

    /// Whether the span crosses into another year, so that its dates need theirs.
    fn crosses_a_year(&self) -> bool {
        self.year(self.start) != self.year(self.end)
    }

    /// The axis's title: its unit, and its year when it has one.
    fn description(&self) -> String {
        if self.crosses_a_year() {
            "Date".to_owned()
        } else {
            format!("Date ({})", self.year(self.start))
        }
    }

    /// Tick labels: fewer when they carry years.
    fn ticks(&self) -> usize {
        if self.crosses_a_year() {
            4
        } else {
            6
        }
    }

    fn label(&self, day: &f64) -> String {
        let format = if self.crosses_a_year() { "%-d %b %Y" } else { "%-d %b" };
        instant(*day).map(|t| t.with_timezone(&self.zone).format(format).to_string()).unwrap_or_default()
    }

    fn contains(&self, t: DateTime<Utc>) -> bool {
        (self.start..=self.end).contains(&days(t))
    }
}

/// The instant `day` days after the Unix epoch.
fn instant(day: f64) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp((day * 86_400.0) as i64, 0)
}

/// A chart builder on `root` less the room on its right, with the same
/// label areas on every plot, so their time axes line up on the page.
fn chart_on<'a, 'b>(root: &'a DrawingArea<SVGBackend<'b>, Shift>) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(root);
    builder.margin(10).margin_right(10 + LINE_LABELS).x_label_area_size(2 * TEXT + 8).y_label_area_size(VALUE_LABELS);
    builder
}

/// The style of every text of the plots, in `color`.
fn text(color: RGBColor) -> TextStyle<'static> {
    ("sans-serif", TEXT).into_font().color(&color)
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
/// urgent limit for each drawn as dashed lines, every line labelled once
/// with its value, right of the plot, outside the data (the page's caption
/// names the colours, which are those of `dashboard.css`).
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
        let mut chart = chart_on(root).build_cartesian_2d(axis.start..axis.end, y_min..y_max)?;
        chart
            .configure_mesh()
            .x_labels(axis.ticks())
            .x_label_formatter(&|d| axis.label(d))
            .x_desc(axis.description())
            .y_desc("mmHg")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style(text(BLACK))
            .axis_desc_style(text(BLACK))
            .light_line_style(TRANSPARENT)
            .draw()?;
        let span = [axis.start, axis.end];
        let lines = [
            (urgent.0, URGENT, format!("Urgent {}", urgent.0)),
            (limit.0, LIMIT, format!("Limit {}", limit.0)),
            (urgent.1, URGENT, format!("Urgent {}", urgent.1)),
            (limit.1, LIMIT, format!("Limit {}", limit.1)),
        ];
        let mut labels = Vec::new();
        for (value, color, name) in lines {
            let line = span.iter().map(|x| (*x, f64::from(value)));
            chart.draw_series(DashedLineSeries::new(line, 6, 4, color.stroke_width(2)))?;
            labels.push((chart.backend_coord(&(axis.end, f64::from(value))).1, name, color));
        }
        // Right of the plot, each at its line's height, moved apart where
        // two lines are closer than a line of text.
        let right = chart.plotting_area().get_pixel_range().0.end + 6;
        let gap = i32::try_from(TEXT).unwrap_or(22);
        labels.sort_by_key(|label| label.0);
        for i in 1..labels.len() {
            labels[i].0 = labels[i].0.max(labels[i - 1].0 + gap);
        }
        for (y, name, color) in labels {
            root.draw(&Text::new(name, (right, y - gap / 2), text(color)))?;
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
        let mut chart = chart_on(root).build_cartesian_2d(axis.start..axis.end, 0f64..f64::from(max) + 0.5)?;
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
                ("sans-serif", TEXT).into_font().color(&RGBColor(0x3a, 0x3f, 0x46)),
            )])?;
        }
        chart
            .configure_mesh()
            .x_labels(axis.ticks())
            .x_label_formatter(&|d| axis.label(d))
            .x_desc(axis.description())
            .y_desc("Total")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style(text(BLACK))
            .axis_desc_style(text(BLACK))
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
    svg("Side effects over time, by severity", (SIZE.0, 190), |root| {
        let mut chart = chart_on(root).build_cartesian_2d(axis.start..axis.end, 0.5f64..3.5)?;
        chart
            .configure_mesh()
            .x_labels(axis.ticks())
            .x_label_formatter(&|d| axis.label(d))
            .x_desc(axis.description())
            .label_style(text(BLACK))
            .axis_desc_style(text(BLACK))
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
        assert!(svg.contains("<circle"), "the reading is drawn");
        assert!(svg.contains("#B00020") || svg.contains("#b00020"), "the urgent line has its colour");
        // Each of the four lines is labelled once, right of the plot (outside the data).
        let width = f64::from(SIZE.0);
        for label in ["Urgent 180", "Limit 140", "Urgent 120", "Limit 90"] {
            assert_eq!(svg.matches(&format!(">\n{label}\n<")).count(), 1, "{label} once: {svg}");
            let x = text_x(&svg, label);
            // Right of the plotting area (which ends the label room and a margin short of the edge).
            let plot_right = width - f64::from(LINE_LABELS) - 10.0;
            assert!(x > plot_right && x < width - 90.0, "{label} at x={x}");
            assert_eq!(svg.matches(">\nmmHg\n<").count(), 1, "one axis of values, on the left");
        }
        // Two lines closer than a line of text get labels apart.
        let close = blood_pressure(&[], (140, 90), (145, 120), &axis()).unwrap();
        let gap = (text_y(&close, "Limit 140") - text_y(&close, "Urgent 145")).abs();
        assert!(gap >= f64::from(TEXT) / 1.24, "labels {gap} apart");
    }

    /// The `x` (or `y`) attribute of the SVG `<text>` holding `label`.
    fn text_attribute(svg: &str, label: &str, name: &str) -> f64 {
        let end = svg.find(&format!(">\n{label}\n<")).unwrap_or_else(|| panic!("no {label}"));
        let tag = &svg[svg[..end].rfind("<text").unwrap()..end];
        let value = tag.split(&format!(" {name}=\"")).nth(1).unwrap().split('"').next().unwrap();
        value.parse().unwrap()
    }

    fn text_x(svg: &str, label: &str) -> f64 {
        text_attribute(svg, label, "x")
    }

    fn text_y(svg: &str, label: &str) -> f64 {
        text_attribute(svg, label, "y")
    }

    #[test]
    fn the_axis_names_its_year_and_every_date_carries_one_across_new_year() {
        let zone = Zone::named("UTC").unwrap();
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let within = TimeAxis::around([now - chrono::Duration::days(30)], now, zone.clone());
        assert_eq!(within.description(), "Date (2026)");
        assert_eq!(within.label(&days(now)), "1 Dec");
        let january = Utc.with_ymd_and_hms(2027, 1, 10, 12, 0, 0).unwrap();
        let across = TimeAxis::around([january - chrono::Duration::days(30)], january, zone);
        assert_eq!(across.description(), "Date");
        assert_eq!(across.label(&days(january)), "10 Jan 2027");
        let svg = scores(InstrumentKind::Phq9, &[(january, 3)], &across).unwrap();
        assert!(svg.contains("2026") && svg.contains("2027"), "the ticks carry their years");
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
        assert_eq!(ahead.left_out(), (1, 0), "and counted, for the page to say so");
        let ancient =
            TimeAxis::around(month.into_iter().chain([now - chrono::Duration::days(3650)]), now, zone.clone());
        assert_eq!((ancient.start, ancient.end, ancient.left_out()), (plain.start, plain.end, (0, 1)));
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
