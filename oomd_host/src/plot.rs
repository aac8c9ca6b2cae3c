//! A run as a picture: one SVG with a panel per subject, its reported and kernel bytes over
//! the ticks, its soft and hard limits, and a mark for every event that matters, labelled in
//! the marker words.
//!
//! [`timeline`] replays a [`Run`]'s inputs through a fresh core and samples what the core knew
//! of every subject after each tick (the figures it judged, not what was sent); [`svg`] draws
//! it with `plotters`' SVG backend. The same run always gives the same bytes: no clock, no
//! randomness, subjects in id order, floats printed by the backend the same way every time.
//!
//! What it is not: a live view (that is `oomctl top`), or a measure of memory (the figures are
//! the core's inputs).

use std::collections::BTreeMap;
use std::fmt;

use memstat::SubjectId;
use oomd::{EventKind, Tick};
use plotters::prelude::*;

use crate::sim::{Driver, Run, SimError};

/// What the core knew of one subject after one tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// The tick.
    pub tick: u64,
    /// Its last accepted report.
    pub reported: Option<u64>,
    /// Its last kernel reading.
    pub kernel: Option<u64>,
    /// Its soft limit then.
    pub soft: u64,
    /// Its hard limit then.
    pub hard: u64,
}

/// An event drawn on a subject's panel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    /// When.
    pub tick: u64,
    /// Which kind.
    pub kind: MarkKind,
    /// The bytes the event names, if it names any (the figure judged at that moment).
    pub bytes: Option<u64>,
}

/// The events a panel marks, each drawn with its marker words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum MarkKind {
    /// `soft limit`.
    SoftLimit,
    /// `kill decided`.
    Decided,
    /// `kill requested`.
    Requested,
    /// `kill escalated`.
    Escalated,
    /// `kill` (confirmed).
    Confirmed,
    /// `kill denied`.
    Denied,
    /// `kill throttled`.
    Throttled,
    /// `kill refused` or `kill failed`.
    Refused,
    /// `would kill` (observe-only).
    WouldKill,
}

impl MarkKind {
    /// Every kind, in legend order.
    pub const ALL: [MarkKind; 9] = [
        MarkKind::SoftLimit,
        MarkKind::Decided,
        MarkKind::Requested,
        MarkKind::Escalated,
        MarkKind::Confirmed,
        MarkKind::Denied,
        MarkKind::Throttled,
        MarkKind::Refused,
        MarkKind::WouldKill,
    ];

    /// The marker words.
    #[must_use]
    pub const fn words(self) -> &'static str {
        match self {
            MarkKind::SoftLimit => "soft limit",
            MarkKind::Decided => "kill decided",
            MarkKind::Requested => "kill requested",
            MarkKind::Escalated => "kill escalated",
            MarkKind::Confirmed => "kill",
            MarkKind::Denied => "kill denied",
            MarkKind::Throttled => "kill throttled",
            MarkKind::Refused => "kill refused",
            MarkKind::WouldKill => "would kill",
        }
    }

    fn color(self) -> RGBColor {
        match self {
            MarkKind::SoftLimit => RGBColor(200, 150, 0),
            MarkKind::Decided => RGBColor(230, 90, 0),
            MarkKind::Requested => RGBColor(200, 0, 0),
            MarkKind::Escalated => RGBColor(140, 0, 80),
            MarkKind::Confirmed => RGBColor(0, 0, 0),
            MarkKind::Denied => RGBColor(0, 130, 60),
            MarkKind::Throttled => RGBColor(120, 120, 120),
            MarkKind::Refused => RGBColor(90, 60, 160),
            MarkKind::WouldKill => RGBColor(0, 150, 170),
        }
    }

    fn of(kind: &EventKind) -> Option<(SubjectId, MarkKind, Option<u64>)> {
        Some(match *kind {
            EventKind::SoftExceeded { subject, bytes, .. } => {
                (subject, MarkKind::SoftLimit, Some(bytes))
            }
            EventKind::KillDecided { subject, bytes, .. } => {
                (subject, MarkKind::Decided, Some(bytes))
            }
            EventKind::KillRequested { subject, .. } => (subject, MarkKind::Requested, None),
            EventKind::KillEscalated { subject, .. } => (subject, MarkKind::Escalated, None),
            EventKind::KillConfirmed { subject, bytes } => {
                (subject, MarkKind::Confirmed, Some(bytes))
            }
            EventKind::KillDenied { subject, bytes, .. } => {
                (subject, MarkKind::Denied, Some(bytes))
            }
            EventKind::KillThrottled { subject, bytes } => {
                (subject, MarkKind::Throttled, Some(bytes))
            }
            EventKind::KillRefused { subject, .. } => (subject, MarkKind::Refused, None),
            EventKind::KillFailed { subject, bytes } => (subject, MarkKind::Refused, Some(bytes)),
            EventKind::WouldKill { subject, bytes, .. } => {
                (subject, MarkKind::WouldKill, Some(bytes))
            }
            _ => return None,
        })
    }
}

/// One subject's panel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lane {
    /// Who.
    pub subject: SubjectId,
    /// Its name (or its id, when the run has none for it).
    pub name: String,
    /// After every tick it was known at.
    pub samples: Vec<Sample>,
    /// Its events.
    pub marks: Vec<Mark>,
    /// Frames of it rejected (counted, not only the rate-limited events), by tick.
    pub rejected: BTreeMap<u64, u32>,
}

/// A whole run, ready to draw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeline {
    /// The sample period at the start, in ms (the x axis says ticks and, with it, ms).
    pub period_ms: u32,
    /// The last tick.
    pub end: u64,
    /// One per subject, in id order.
    pub lanes: Vec<Lane>,
}

/// Replays `run`'s inputs through a fresh core and samples every subject after each tick.
pub fn timeline(run: &Run) -> Result<Timeline, SimError> {
    let mut driver = Driver::new(run.policy, run.subject_capacity)?;
    let mut lanes: BTreeMap<SubjectId, Lane> = BTreeMap::new();
    let mut end = 0;
    let mut seen_events = 0;
    let mut rejected_before = 0;
    let mut now = 0;
    for &input in &run.inputs {
        let _ = driver.feed(input);
        for event in &driver.events()[seen_events..] {
            now = event.tick.0;
            if let Some((subject, kind, bytes)) = MarkKind::of(&event.kind) {
                let tick = event.tick.0;
                let mark = Mark { tick, kind, bytes };
                lane(&mut lanes, run, subject).marks.push(mark);
            }
        }
        seen_events = driver.events().len();
        // Rejections by sender: the counters' growth over this input, which is one sender's
        // frame (the events of repeated rejections are rate-limited; the counters are not).
        let rejected = driver.counters().rejected_total();
        if let oomd::Input::Frame { sender, .. } | oomd::Input::LatestFrame { sender, .. } = input {
            let n = u32::try_from(rejected - rejected_before).unwrap_or(u32::MAX);
            if n > 0 {
                let counts = &mut lane(&mut lanes, run, sender).rejected;
                *counts.entry(now).or_default() += n;
            }
        }
        rejected_before = rejected;
        if let oomd::Input::Tick(Tick(t)) = input {
            now = t;
            end = end.max(t);
            for status in driver.subjects() {
                lane(&mut lanes, run, status.subject).samples.push(Sample {
                    tick: t,
                    reported: status.reported_bytes,
                    kernel: status.kernel_bytes,
                    soft: status.limits.soft_bytes,
                    hard: status.limits.hard_bytes,
                });
            }
        }
    }
    Ok(Timeline {
        period_ms: run.policy.sample_period_ms,
        end,
        lanes: lanes.into_values().collect(),
    })
}

fn lane<'a>(
    lanes: &'a mut BTreeMap<SubjectId, Lane>,
    run: &Run,
    subject: SubjectId,
) -> &'a mut Lane {
    lanes.entry(subject).or_insert_with(|| Lane {
        subject,
        name: run
            .names
            .iter()
            .find(|(id, _)| *id == subject)
            .map_or_else(|| format!("{:#x}", subject.get()), |(_, n)| n.to_owned()),
        samples: Vec::new(),
        marks: Vec::new(),
        rejected: BTreeMap::new(),
    })
}

/// Why a picture could not be drawn.
#[derive(Debug)]
pub struct PlotError(String);

impl fmt::Display for PlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot draw the timeline: {}", self.0)
    }
}

impl std::error::Error for PlotError {}

fn err<E: fmt::Display>(e: E) -> PlotError {
    PlotError(e.to_string())
}

const WIDTH: u32 = 1100;
const LEGEND_HEIGHT: u32 = 84;
const REPORTED: RGBColor = RGBColor(30, 90, 200);
const KERNEL: RGBColor = RGBColor(240, 140, 20);
const SOFT: RGBColor = RGBColor(200, 170, 0);
const HARD: RGBColor = RGBColor(200, 0, 0);

/// Panels per row: one for a few subjects, more for many, so 64 stay readable.
fn columns(n: usize) -> usize {
    match n {
        0..=4 => 1,
        5..=16 => 2,
        _ => 4,
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

/// The timeline as one SVG document.
pub fn svg(t: &Timeline) -> Result<String, PlotError> {
    let cols = columns(t.lanes.len());
    let rows = t.lanes.len().div_ceil(cols).max(1);
    let lane_height: u32 = if cols == 1 { 220 } else { 170 };
    let height = LEGEND_HEIGHT + lane_height * u32::try_from(rows).map_err(err)?;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (legend, body) = root.split_vertically(LEGEND_HEIGHT);
        draw_legend(&legend, t)?;
        let panels = body.split_evenly((rows, cols));
        for (lane, area) in t.lanes.iter().zip(panels.iter()) {
            draw_lane(area, lane, t)?;
        }
        root.present().map_err(err)?;
    }
    Ok(out)
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    t: &Timeline,
) -> Result<(), PlotError>
where
    DB::ErrorType: 'static,
{
    let title = format!(
        "oomd timeline: {} subject(s), ticks 0..{} ({} ms per tick at the start)",
        t.lanes.len(),
        t.end,
        t.period_ms
    );
    area.draw_text(
        &title,
        &("sans-serif", 18).into_font().color(&BLACK),
        (10, 8),
    )
    .map_err(err)?;
    let mut x = 10;
    let mut y = 36;
    let lines = [
        ("reported bytes", REPORTED),
        ("kernel bytes", KERNEL),
        ("soft limit", SOFT),
        ("hard limit", HARD),
    ];
    for (label, color) in lines {
        area.draw(&PathElement::new(
            vec![(x, y + 6), (x + 18, y + 6)],
            color.stroke_width(2),
        ))
        .map_err(err)?;
        area.draw_text(
            label,
            &("sans-serif", 12).into_font().color(&BLACK),
            (x + 22, y),
        )
        .map_err(err)?;
        x += 32 + 7 * i32::try_from(label.len()).map_err(err)?;
    }
    x = 10;
    y += 22;
    for kind in MarkKind::ALL {
        area.draw(&Circle::new((x + 4, y + 6), 4, kind.color().filled()))
            .map_err(err)?;
        area.draw_text(
            kind.words(),
            &("sans-serif", 12).into_font().color(&BLACK),
            (x + 12, y),
        )
        .map_err(err)?;
        x += 22 + 7 * i32::try_from(kind.words().len()).map_err(err)?;
    }
    area.draw(&Rectangle::new(
        [(x, y + 2), (x + 3, y + 12)],
        BLACK.mix(0.4).filled(),
    ))
    .map_err(err)?;
    area.draw_text(
        "frames rejected",
        &("sans-serif", 12).into_font().color(&BLACK),
        (x + 8, y),
    )
    .map_err(err)?;
    Ok(())
}

fn draw_lane<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    lane: &Lane,
    t: &Timeline,
) -> Result<(), PlotError>
where
    DB::ErrorType: 'static,
{
    // Scaled to the figures and to the hard limit in force at the end: a subject given its own
    // small limits after it started is not drawn against the global limit it briefly had
    // (the lines above the top are cut at the panel's edge).
    let figures = lane
        .samples
        .iter()
        .flat_map(|s| [s.reported.unwrap_or(0), s.kernel.unwrap_or(0)])
        .chain(lane.marks.iter().filter_map(|m| m.bytes))
        .max()
        .unwrap_or(0);
    let top = figures
        .max(lane.samples.last().map_or(0, |s| s.hard))
        .max(1);
    let y_max = mib(top) * 1.15 + 1e-3;
    let x_max = t.end.max(1);
    let x_desc = if t.period_ms > 0 {
        format!("tick (x {} ms)", t.period_ms)
    } else {
        "tick".to_owned()
    };
    let rejected: u32 = lane.rejected.values().sum();
    let caption = if rejected > 0 {
        format!("{} ({rejected} frames rejected)", lane.name)
    } else {
        lane.name.clone()
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 14))
        .margin(6)
        .x_label_area_size(28)
        .y_label_area_size(48)
        .build_cartesian_2d(0u64..x_max, 0f64..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("MiB")
        .x_labels(6)
        .y_labels(5)
        .light_line_style(WHITE)
        .draw()
        .map_err(err)?;
    let series = |f: fn(&Sample) -> Option<u64>| -> Vec<(u64, f64)> {
        lane.samples
            .iter()
            .filter_map(|s| f(s).map(|b| (s.tick, mib(b))))
            .collect()
    };
    for (points, color, width) in [
        (series(|s| Some(s.hard)), HARD, 1),
        (series(|s| Some(s.soft)), SOFT, 1),
        (series(|s| s.kernel), KERNEL, 2),
        (series(|s| s.reported), REPORTED, 2),
    ] {
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(width)))
            .map_err(err)?;
    }
    // Rejected frames: a bar per tick along the bottom, as tall as how many.
    let most = lane.rejected.values().copied().max().unwrap_or(1).max(1);
    chart
        .draw_series(lane.rejected.iter().map(|(&tick, &n)| {
            let h = y_max * 0.12 * f64::from(n) / f64::from(most);
            Rectangle::new([(tick, 0.0), (tick + 1, h)], BLACK.mix(0.4).filled())
        }))
        .map_err(err)?;
    // Events: a dot at the figure the event names (or, for one that names none, the last
    // figure known then), and its words.
    let mut last_bytes: Option<u64> = None;
    for mark in &lane.marks {
        let sampled = lane
            .samples
            .iter()
            .rev()
            .find(|s| s.tick <= mark.tick)
            .and_then(|s| s.reported.max(s.kernel));
        let bytes = mark.bytes.or(last_bytes).or(sampled).unwrap_or(0);
        last_bytes = Some(bytes);
        chart
            .draw_series(std::iter::once(Circle::new(
                (mark.tick, mib(bytes)),
                4,
                mark.kind.color().filled(),
            )))
            .map_err(err)?;
    }
    // The words at the top of the panel, each in the first row where it does not run into
    // the one before it.
    let mut rows: Vec<i32> = Vec::new(); // per row, where its last label ends
    let (base_x, base_y) = area.get_base_pixel();
    for mark in &lane.marks {
        let (x, y) = chart.backend_coord(&(mark.tick, y_max));
        let (x, y) = (x - base_x + 3, y - base_y + 2);
        let width = 6 * i32::try_from(mark.kind.words().len()).map_err(err)? + 4;
        let row = match rows.iter().position(|&end| end <= x) {
            Some(row) => row,
            None => {
                rows.push(i32::MIN);
                rows.len() - 1
            }
        };
        rows[row] = x + width;
        area.draw_text(
            mark.kind.words(),
            &("sans-serif", 10).into_font().color(&mark.kind.color()),
            (x, y + 11 * i32::try_from(row).map_err(err)?),
        )
        .map_err(err)?;
    }
    Ok(())
}
