//! RFC 3339 timestamps to and from microseconds since the Unix epoch, in UTC.
//!
//! Written out here rather than taken from a date crate: the store needs exactly these two
//! conversions, and the civil-calendar arithmetic is a few lines (Howard Hinnant's algorithms).

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Now, in microseconds since the epoch (0 if the clock is before 1970).
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// The start (midnight UTC) of the calendar month `months` after the one holding `us`, in
/// microseconds since the epoch; `months = 0` is that month's own start.
pub fn month_start_us(us: i64, months: i64) -> i64 {
    let (y, m, _) = civil_from_days(us.div_euclid(86_400_000_000));
    let index = y * 12 + (m - 1) + months;
    days_from_civil(index.div_euclid(12), index.rem_euclid(12) + 1, 1) * 86_400_000_000
}

/// `2026-11-24T19:03:07.123456Z`.
pub fn format_us(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z", s / 3600, s / 60 % 60, s % 60)
}

/// Reads an RFC 3339 timestamp (`2026-11-24T19:03:07Z`, with optional fraction and offset) or a
/// number of seconds since the epoch.
pub fn parse_us(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return secs.checked_mul(1_000_000);
    }
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |range: std::ops::Range<usize>| s.get(range)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[13] != b':'
        || b[16] != b':'
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || h > 23
        || mi > 59
        || sec > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut micros = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<6}", &frac[..digits.min(6)]);
        micros = padded.parse::<i64>().ok()?;
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = (rest.get(1..3)?.parse::<i64>().ok()?, rest.get(4..6)?.parse::<i64>().ok()?);
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    Some(secs * 1_000_000 + micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        for us in [0, 1_764_010_987_123_456, 951_782_400_000_000 /* 2000-02-29 */, -1] {
            assert_eq!(parse_us(&format_us(us)), Some(us), "{}", format_us(us));
        }
        assert_eq!(format_us(1_764_010_987_123_456), "2025-11-24T19:03:07.123456Z");
    }

    #[test]
    fn month_starts_cross_years() {
        let t = parse_us("2026-12-15T10:00:00Z").unwrap_or_default();
        assert_eq!(format_us(month_start_us(t, 0)), "2026-12-01T00:00:00.000000Z");
        assert_eq!(format_us(month_start_us(t, 1)), "2027-01-01T00:00:00.000000Z");
        assert_eq!(format_us(month_start_us(t, -12)), "2025-12-01T00:00:00.000000Z");
    }

    #[test]
    fn parses_offsets_fractions_and_epoch_seconds() {
        let z = parse_us("2026-11-24T12:00:00Z");
        assert_eq!(parse_us("2026-11-24T13:30:00+01:30"), z);
        assert_eq!(parse_us("2026-11-24T12:00:00.5Z").zip(z).map(|(a, b)| a - b), Some(500_000));
        assert_eq!(parse_us("1700000000"), Some(1_700_000_000_000_000));
        for bad in
            ["", "2026-11-24", "2026-13-01T00:00:00Z", "2026-11-24T12:00:00", "2026-11-24T12:00:00+1", "yesterday"]
        {
            assert_eq!(parse_us(bad), None, "{bad}");
        }
    }
}
