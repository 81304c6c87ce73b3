//! Monthly accounting (`accounting_max_bytes`), without I/O or clock: the period arithmetic,
//! the byte counter and its saved form.
//!
//! A period starts at 00:00 UTC on `accounting_start_day` (1–28) of a month and ends at the
//! same moment a month later. The counter adds every byte the relay passes (see
//! [`crate::traffic`]); once it reaches the limit the relay hibernates until the period ends.
//! The counter is saved in `data_dir` (see [`Accounting::to_text`]) so a restart within the
//! period carries on from where it was, and a saved counter from an older period is ignored.

/// Seconds in a day.
const DAY: u64 = 86_400;
/// Header line of the saved counter.
const HEADER: &str = "onionlab accounting v1";

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn unix_at(year: i64, month: u32, day: u32) -> u64 {
    u64::try_from(days_from_civil(year, month, day)).unwrap_or(0) * DAY
}

fn next_month(year: i64, month: u32) -> (i64, u32) {
    if month == 12 { (year + 1, 1) } else { (year, month + 1) }
}

/// The accounting period containing `now` (Unix seconds): `(start, end)`, end exclusive.
/// `start_day` is clamped to 1–28 so every month has it.
pub fn period_containing(now: u64, start_day: u8) -> (u64, u64) {
    let start_day = u32::from(start_day.clamp(1, 28));
    let (year, month, day) = civil_from_days(i64::try_from(now / DAY).unwrap_or(0));
    let (y, m) = if day >= start_day {
        (year, month)
    } else if month == 1 {
        (year - 1, 12)
    } else {
        (year, month - 1)
    };
    let (ny, nm) = next_month(y, m);
    (unix_at(y, m, start_day), unix_at(ny, nm, start_day))
}

/// The byte counter of one accounting period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accounting {
    max_bytes: u64,
    start_day: u8,
    period: (u64, u64),
    used: u64,
}

impl Accounting {
    /// A counter for the period containing `now`, resuming `saved` (the text of
    /// [`Accounting::to_text`]) when it belongs to that same period.
    pub fn resume(max_bytes: u64, start_day: u8, saved: Option<&str>, now: u64) -> Self {
        let period = period_containing(now, start_day);
        let used = saved
            .and_then(parse_saved)
            .filter(|(start, _)| *start == period.0)
            .map_or(0, |(_, used)| used);
        Accounting {
            max_bytes,
            start_day,
            period,
            used,
        }
    }

    /// Adds `bytes`; true if this crossed the limit (the relay starts hibernating).
    pub fn add(&mut self, bytes: u64) -> bool {
        let was = self.exhausted();
        self.used = self.used.saturating_add(bytes);
        !was && self.exhausted()
    }

    /// The limit is reached: hibernate until [`Accounting::period_end`].
    pub fn exhausted(&self) -> bool {
        self.used >= self.max_bytes
    }

    /// Bytes counted in this period.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// When this period ends (Unix seconds).
    pub fn period_end(&self) -> u64 {
        self.period.1
    }

    /// Moves to the period containing `now` if this one is over; true if it moved (the
    /// counter starts from zero and a hibernating relay wakes up).
    pub fn roll(&mut self, now: u64) -> bool {
        if now < self.period.1 {
            return false;
        }
        self.period = period_containing(now, self.start_day);
        self.used = 0;
        true
    }

    /// The saved form: a header, the period start and the bytes counted.
    pub fn to_text(&self) -> String {
        format!("{HEADER}\nperiod_start {}\nused {}\n", self.period.0, self.used)
    }
}

fn parse_saved(text: &str) -> Option<(u64, u64)> {
    let mut lines = text.lines();
    if lines.next()? != HEADER {
        return None;
    }
    let start = lines.next()?.strip_prefix("period_start ")?.trim().parse().ok()?;
    let used = lines.next()?.strip_prefix("used ")?.trim().parse().ok()?;
    Some((start, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-03-15 12:00:00 UTC.
    const MID_MARCH_2024: u64 = 1_710_504_000;

    #[test]
    fn calendar_round_trips() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(19_797), (2024, 3, 15));
        for d in (-1000..40_000).step_by(97) {
            let (y, m, day) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, day), d);
        }
    }

    #[test]
    fn periods_start_on_the_configured_day() {
        let (start, end) = period_containing(MID_MARCH_2024, 1);
        assert_eq!(civil_from_days((start / DAY) as i64), (2024, 3, 1));
        assert_eq!(civil_from_days((end / DAY) as i64), (2024, 4, 1));
        // Before the 20th, the period began on the 20th of the previous month.
        let (start, end) = period_containing(MID_MARCH_2024, 20);
        assert_eq!(civil_from_days((start / DAY) as i64), (2024, 2, 20));
        assert_eq!(end - start, 29 * DAY, "February 2024 has 29 days");
        // Across a year boundary.
        let jan_5 = unix_at(2025, 1, 5) + 3600;
        let (start, end) = period_containing(jan_5, 10);
        assert_eq!((start, end), (unix_at(2024, 12, 10), unix_at(2025, 1, 10)));
        // The first second of a period belongs to it.
        assert_eq!(period_containing(end, 10).0, end);
    }

    #[test]
    fn limit_then_wake_at_the_next_period() {
        let mut a = Accounting::resume(1000, 1, None, MID_MARCH_2024);
        assert!(!a.add(999));
        assert!(a.add(1), "the byte that reaches the limit starts hibernation");
        assert!(!a.add(500), "only once");
        assert!(a.exhausted());
        assert!(!a.roll(MID_MARCH_2024 + DAY));
        assert!(a.exhausted(), "still hibernating within the period");
        let end = a.period_end();
        assert!(a.roll(end));
        assert!(!a.exhausted());
        assert_eq!((a.used(), a.period_end()), (0, unix_at(2024, 5, 1)));
    }

    #[test]
    fn saved_counter_resumes_only_in_its_own_period() {
        let mut a = Accounting::resume(1000, 1, None, MID_MARCH_2024);
        a.add(700);
        let saved = a.to_text();
        let resumed = Accounting::resume(1000, 1, Some(&saved), MID_MARCH_2024 + 3 * DAY);
        assert_eq!(resumed.used(), 700);
        let next_month = Accounting::resume(1000, 1, Some(&saved), unix_at(2024, 4, 2));
        assert_eq!(next_month.used(), 0);
        for junk in ["", "onionlab accounting v1\nperiod_start x\nused 1\n", "other\n1\n2\n"] {
            assert_eq!(Accounting::resume(1000, 1, Some(junk), MID_MARCH_2024).used(), 0);
        }
    }
}
