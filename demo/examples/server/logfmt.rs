//! The log's line format when stderr is not a terminal: the layout of tracing-subscriber's
//! default format (`2026-12-02T03:33:47.634337Z  INFO target: message key=value ...`),
//! written piece by piece instead of through `core::fmt` where it can be.
//!
//! With the request log on, every request formats one line on the thread that serves it;
//! tracing-subscriber's own formatter spends most of that line's cost in `write!` calls
//! (the timestamp alone is seven padded integers). Here the date and time are formatted
//! once a second, integers by hand, and strings are copied as they are. Values that are
//! neither (a `%`-recorded `Display`, such as the request log's escaped path) still go
//! through `core::fmt`.

use std::{
    cell::RefCell,
    fmt,
    time::{SystemTime, UNIX_EPOCH},
};

use tracing::{
    field::{Field, Visit},
    Event, Level, Subscriber,
};
use tracing_subscriber::{
    fmt::{format::Writer, FmtContext, FormatEvent, FormatFields, FormattedFields},
    registry::LookupSpan,
};

/// The line format (see the module's docs).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Lines;

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        write_timestamp(&mut writer)?;
        writer.write_str(match *meta.level() {
            Level::ERROR => "ERROR ",
            Level::WARN => " WARN ",
            Level::INFO => " INFO ",
            Level::DEBUG => "DEBUG ",
            Level::TRACE => "TRACE ",
        })?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                writer.write_str(span.name())?;
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        writer.write_char('{')?;
                        writer.write_str(fields)?;
                        writer.write_char('}')?;
                    }
                }
                writer.write_char(':')?;
            }
            writer.write_char(' ')?;
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        let mut fields = Fields {
            writer: writer.by_ref(),
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

/// Writes an event's fields as tracing-subscriber does: the message first and bare, then
/// `name=value`, strings quoted and escaped by their `Debug`.
struct Fields<'a> {
    writer: Writer<'a>,
    first: bool,
    result: fmt::Result,
}

impl Fields<'_> {
    /// A space before every field but the first.
    fn separate(&mut self) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.writer.write_char(' ')?;
        }
        Ok(())
    }

    fn name(&mut self, field: &Field) -> fmt::Result {
        self.separate()?;
        let name = field.name();
        self.writer
            .write_str(name.strip_prefix("r#").unwrap_or(name))?;
        self.writer.write_char('=')
    }

    fn record(&mut self, write: impl FnOnce(&mut Self) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = write(self);
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(|this| {
            if field.name() == "message" {
                this.separate()?;
                return this.writer.write_str(value);
            }
            this.name(field)?;
            write!(this.writer, "{value:?}")
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record(|this| {
            this.name(field)?;
            this.writer.write_str(Decimal::new(value).as_str())
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record(|this| {
            this.name(field)?;
            if value < 0 {
                this.writer.write_char('-')?;
            }
            this.writer
                .write_str(Decimal::new(value.unsigned_abs()).as_str())
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record(|this| {
            this.name(field)?;
            this.writer.write_str(if value { "true" } else { "false" })
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(|this| {
            if field.name() == "message" {
                this.separate()?;
                return write!(this.writer, "{value:?}");
            }
            this.name(field)?;
            write!(this.writer, "{value:?}")
        });
    }
}

/// An unsigned integer in decimal, without `core::fmt`.
struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    fn new(mut value: u64) -> Self {
        let mut digits = [b'0'; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        Self { digits, start }
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits were written.
        std::str::from_utf8(&self.digits[self.start..]).unwrap_or("0")
    }
}

thread_local! {
    /// The second last formatted on this thread, and its `YYYY-MM-DDTHH:MM:SS.`.
    static SECOND: RefCell<(u64, [u8; 20])> = const { RefCell::new((u64::MAX, [0; 20])) };
}

/// `2026-12-02T03:33:47.634337Z ` (UTC, microseconds), as tracing-subscriber's default.
fn write_timestamp(writer: &mut Writer<'_>) -> fmt::Result {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (secs, micros) = (now.as_secs(), now.subsec_micros());
    let mut line = [0u8; 28];
    SECOND.with(|second| {
        let mut second = second.borrow_mut();
        if second.0 != secs {
            *second = (secs, date_time(secs));
        }
        line[..20].copy_from_slice(&second.1);
    });
    let mut micros = micros;
    for at in (20..26).rev() {
        line[at] = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    line[26] = b'Z';
    line[27] = b' ';
    // Only ASCII was written.
    writer.write_str(std::str::from_utf8(&line).map_err(|_| fmt::Error)?)
}

/// `YYYY-MM-DDTHH:MM:SS.` of a Unix time (UTC), by the civil-from-days algorithm.
fn date_time(secs: u64) -> [u8; 20] {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = *b"0000-00-00T00:00:00.";
    let mut put = |at: usize, width: usize, mut value: u64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year.clamp(0, 9999) as u64);
    put(5, 2, month as u64);
    put(8, 2, day as u64);
    put(11, 2, hour);
    put(14, 2, minute);
    put(17, 2, second);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(&date_time(0), b"1970-01-01T00:00:00.");
        assert_eq!(&date_time(951_782_400), b"2000-02-29T00:00:00.");
        assert_eq!(&date_time(1_796_182_427), b"2026-12-02T03:33:47.");
        assert_eq!(&date_time(4_107_542_399), b"2100-02-28T23:59:59.");
    }

    #[test]
    fn decimals() {
        for n in [0, 7, 10, 200, 65_535, u64::MAX] {
            assert_eq!(Decimal::new(n).as_str(), n.to_string());
        }
    }

    /// The same line as tracing-subscriber's default format, for the fields the log has.
    #[test]
    fn lines_match_tracing_subscribers_layout() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let log = |lines: bool| {
            let buffer = Buffer::default();
            let writer = buffer.clone();
            let builder = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_writer(move || writer.clone());
            let emit = || {
                let span = tracing::info_span!("conn", peer = "127.0.0.1:1").entered();
                tracing::info!(
                    method = %"POST",
                    path = %"/oauth2/revoke",
                    status = 200u16,
                    outcome = "not_active",
                    delta = -3i64,
                    ok = true,
                    "request"
                );
                drop(span);
                tracing::warn!(r#type = "x", "a \"quoted\" message");
            };
            if lines {
                tracing::subscriber::with_default(builder.event_format(Lines).finish(), emit);
            } else {
                tracing::subscriber::with_default(builder.finish(), emit);
            }
            let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
            // The timestamps differ: compare what follows them.
            text.lines()
                .map(|l| l.split_once("Z ").unwrap().1.to_owned())
                .collect::<Vec<_>>()
        };
        let (ours, theirs) = (log(true), log(false));
        assert_eq!(ours, theirs);
        assert_eq!(ours.len(), 2);
    }
}
