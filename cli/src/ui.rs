//! Terminal output for the demo: headings, aligned tables, colour when the
//! terminal supports it, pacing, and a spinner for anything slow. `--plain`
//! (or a non-terminal stdout, or `NO_COLOR`) gives plain, unpaced lines
//! suitable for logs and tests.

use std::io::IsTerminal;
use std::time::Duration;

/// How to print.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ui {
    color: bool,
    paced: bool,
}

const RESET: &str = "\x1b[0m";

impl Ui {
    /// Chooses the style from `plain` and the environment.
    pub(crate) fn new(plain: bool) -> Ui {
        let terminal = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some();
        Ui { color: !plain && terminal && !no_color, paced: !plain && terminal }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}{RESET}")
        } else {
            text.to_owned()
        }
    }

    /// A numbered step heading.
    pub(crate) fn step(&self, n: u32, title: &str) {
        self.pause(600);
        outln!();
        outln!("{}", self.paint("1;36", &format!("── {n}. {title} ")));
    }

    /// A plain line.
    pub(crate) fn say(&self, text: &str) {
        outln!("   {text}");
    }

    /// A line marked as good news.
    pub(crate) fn good(&self, text: &str) {
        outln!("   {} {text}", self.paint("32", "✓"));
    }

    /// A line marked as needing attention.
    pub(crate) fn warn(&self, text: &str) {
        outln!("   {} {text}", self.paint("33", "!"));
    }

    /// A line marked as a stop.
    pub(crate) fn stop(&self, text: &str) {
        outln!("   {} {text}", self.paint("1;31", "✗"));
    }

    /// A readiness status, coloured by meaning.
    pub(crate) fn status(&self, status: &str) -> String {
        let code = match status {
            "ready" => "1;32",
            "wait" => "1;33",
            "blocked" => "1;31",
            _ => "1;35",
        };
        self.paint(code, &status.to_uppercase())
    }

    /// An aligned table.
    pub(crate) fn table(&self, headers: &[&str], rows: &[Vec<String>]) {
        let widths: Vec<usize> = (0..headers.len())
            .map(|c| {
                rows.iter()
                    .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                    .chain([headers[c].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: Vec<String>| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell}{}", " ".repeat(w - cell.chars().count())))
                .collect();
            format!("   {}", padded.join("  ").trim_end())
        };
        outln!("{}", self.paint("2", &line(headers.iter().map(|h| (*h).to_owned()).collect())));
        for row in rows {
            outln!("{}", line(row.clone()));
        }
    }

    /// Pauses briefly between steps on a terminal (never in plain mode).
    pub(crate) fn pause(&self, millis: u64) {
        if self.paced {
            std::thread::sleep(Duration::from_millis(millis));
        }
    }

    /// Runs `work` with a spinner (terminal) or a `…` line (plain).
    pub(crate) async fn busy<T>(&self, label: &str, work: impl std::future::Future<Output = T>) -> T {
        if !self.paced {
            outln!("   {label} …");
            return work.await;
        }
        let label = label.to_owned();
        let spinner = tokio::spawn(async move {
            let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            for frame in frames.iter().cycle() {
                out!("\r   {frame} {label}");
                crate::input::flush_stdout();
                tokio::time::sleep(Duration::from_millis(80)).await;
            }
        });
        let result = work.await;
        spinner.abort();
        out!("\r\x1b[2K");
        crate::input::flush_stdout();
        result
    }
}
