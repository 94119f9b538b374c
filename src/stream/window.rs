//! Event-time windows: which windows a time falls in (tumbling, hopping), when a window closes
//! (watermark ≥ end + grace), when it is evicted (watermark ≥ end + retention), and event times
//! read from a value (epoch milliseconds or RFC 3339). Session merging lives in `state.rs`.

use serde_json::Value;

use super::spec::{WindowSpec, WindowType};
use super::time::{IDLE_TIMEOUT_MS_DEFAULT, MAX_FUTURE_MS_DEFAULT};

/// How long a closed window stays queryable, in event time after its end, unless the spec says.
pub const WINDOW_RETENTION_MS_DEFAULT: u64 = 24 * 60 * 60 * 1000;
/// The most windows one record may fall in (hopping: `size_ms / advance_ms`).
pub const WINDOWS_PER_RECORD_MAX: u64 = 1000;

/// A window spec in the form the runner uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Windowing {
    pub kind: WindowType,
    pub size_ms: i64,
    pub advance_ms: i64,
    pub gap_ms: i64,
    pub grace_ms: i64,
    /// Never less than `grace_ms`: a window is not evicted before it closes.
    pub retention_ms: i64,
    pub idle_timeout_ms: i64,
    pub max_future_ms: i64,
}

impl Windowing {
    pub(crate) fn new(spec: &WindowSpec) -> Windowing {
        // `ViewSpec::check` bounded every field to i64::MAX / 4, so the sums below cannot overflow.
        let size_ms = spec.size_ms.unwrap_or(0) as i64;
        let grace_ms = spec.grace_ms as i64;
        Windowing {
            kind: spec.kind,
            size_ms,
            advance_ms: spec.advance_ms.map_or(size_ms, |a| a as i64),
            gap_ms: spec.gap_ms.unwrap_or(0) as i64,
            grace_ms,
            retention_ms: (spec.retention_ms.unwrap_or(WINDOW_RETENTION_MS_DEFAULT) as i64).max(grace_ms),
            idle_timeout_ms: spec.idle_timeout_ms.unwrap_or(IDLE_TIMEOUT_MS_DEFAULT) as i64,
            max_future_ms: spec.max_future_ms.unwrap_or(MAX_FUTURE_MS_DEFAULT) as i64,
        }
    }

    /// The `[start, end)` windows that contain `t` (tumbling and hopping), oldest first.
    #[cfg(test)]
    pub(crate) fn assign(&self, t: i64, out: &mut Vec<(i64, i64)>) {
        out.clear();
        self.for_each_window(t, |start, end| out.push((start, end)));
    }

    /// Calls `f(start, end)` for each `[start, end)` window that contains `t` (tumbling and
    /// hopping), oldest first.
    #[inline]
    pub(crate) fn for_each_window(&self, t: i64, mut f: impl FnMut(i64, i64)) {
        debug_assert!(self.kind != WindowType::Session);
        let last_start = t.div_euclid(self.advance_ms) * self.advance_ms;
        if self.size_ms == self.advance_ms {
            // Tumbling: the one window.
            return f(last_start, last_start.saturating_add(self.size_ms));
        }
        let mut start = last_start;
        // Walk back while the window still contains t.
        while start > t.saturating_sub(self.size_ms) {
            start -= self.advance_ms;
        }
        start += self.advance_ms;
        while start <= last_start {
            f(start, start.saturating_add(self.size_ms));
            start += self.advance_ms;
        }
    }

    /// A window ending at `end` is closed once the watermark reaches `end + grace_ms`.
    pub(crate) fn is_closed(&self, end: i64, watermark: Option<i64>) -> bool {
        watermark.is_some_and(|w| w >= end.saturating_add(self.grace_ms))
    }

    /// A closed window ending at `end` is dropped once the watermark reaches `end + retention_ms`.
    pub(crate) fn is_expired(&self, end: i64, watermark: Option<i64>) -> bool {
        watermark.is_some_and(|w| w >= end.saturating_add(self.retention_ms))
    }
}

/// The event time at `pointer` in `doc`: an integer (epoch ms), a float (truncated) or an RFC 3339
/// string. `None` when missing or unreadable.
pub(crate) fn event_time(doc: &Value, pointer: &str) -> Option<i64> {
    time_of(super::expr::lookup(doc, pointer))
}

/// An event time field's value as epoch milliseconds (see [`event_time`]).
pub(crate) fn time_of(field: Option<&Value>) -> Option<i64> {
    match field? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        Value::String(s) => parse_rfc3339_ms(s),
        _ => None,
    }
}

/// Parses an RFC 3339 timestamp (`2024-05-01T12:30:00.250Z`, `…+02:00`) into epoch milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0i64, |acc, &d| d.is_ascii_digit().then(|| acc * 10 + (d - b'0') as i64))
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 3 {
                millis = millis * 10 + (b[i] - b'0') as i64;
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..3 {
            millis *= 10;
        }
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (h, m) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 60 + m;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset_min * 60;
    Some(secs * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(kind: WindowType, size: Option<u64>, advance: Option<u64>) -> Windowing {
        Windowing::new(&WindowSpec {
            kind,
            size_ms: size,
            advance_ms: advance,
            gap_ms: None,
            grace_ms: 5,
            time: None,
            retention_ms: None,
            idle_timeout_ms: None,
            max_future_ms: None,
        })
    }

    #[test]
    fn tumbling_and_hopping_assignment() {
        let mut out = Vec::new();
        let t = w(WindowType::Tumbling, Some(60), None);
        t.assign(0, &mut out);
        assert_eq!(out, vec![(0, 60)]);
        t.assign(59, &mut out);
        assert_eq!(out, vec![(0, 60)]);
        t.assign(60, &mut out);
        assert_eq!(out, vec![(60, 120)]);
        t.assign(-1, &mut out);
        assert_eq!(out, vec![(-60, 0)]);
        let h = w(WindowType::Hopping, Some(60), Some(20));
        h.assign(65, &mut out);
        assert_eq!(out, vec![(20, 80), (40, 100), (60, 120)]);
        h.assign(60, &mut out);
        assert_eq!(out, vec![(20, 80), (40, 100), (60, 120)]);
        h.assign(59, &mut out);
        assert_eq!(out, vec![(0, 60), (20, 80), (40, 100)]);
        // Brute force: every window [k*adv, k*adv+size) containing t.
        for t in -200..200 {
            h.assign(t, &mut out);
            let expected: Vec<(i64, i64)> =
                (-20..20).map(|k| (k * 20, k * 20 + 60)).filter(|(s, e)| *s <= t && t < *e).collect();
            assert_eq!(out, expected, "t={t}");
        }
    }

    #[test]
    fn closing_and_expiry() {
        let t = w(WindowType::Tumbling, Some(60), None);
        assert!(!t.is_closed(60, None));
        assert!(!t.is_closed(60, Some(64)));
        assert!(t.is_closed(60, Some(65)));
        assert!(!t.is_expired(60, Some(65)));
        assert!(t.is_expired(60, Some(60 + WINDOW_RETENTION_MS_DEFAULT as i64)));
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("2024-05-01T12:30:00.250Z"), Some(1_714_566_600_250));
        assert_eq!(parse_rfc3339_ms("2024-05-01T14:30:00.25+02:00"), Some(1_714_566_600_250));
        assert_eq!(parse_rfc3339_ms("2024-02-29T00:00:00.123456Z"), Some(1_709_164_800_123));
        assert_eq!(parse_rfc3339_ms("1969-12-31T23:59:59Z"), Some(-1000));
        for bad in ["", "2024-05-01", "2024-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "2024-05-01T12:30:00", "x"] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
        let doc = serde_json::json!({"a": 5, "b": "1970-01-01T00:00:01Z", "c": true});
        assert_eq!(event_time(&doc, "/a"), Some(5));
        assert_eq!(event_time(&doc, "/b"), Some(1000));
        assert_eq!(event_time(&doc, "/c"), None);
        assert_eq!(event_time(&doc, "/d"), None);
    }
}
