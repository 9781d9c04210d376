//! How numbers are written for people: counts in words and thousands grouped. Every layer says
//! counts (the loaders, the checks, the reports, the IaC binaries), so this lives below them all.

/// `n` things, in words: "1 record", "2,150 records" (never "record(s)").
pub fn counted(n: impl TryInto<i64>, singular: &str, plural: &str) -> String {
    let n: i64 = n.try_into().unwrap_or(i64::MAX);
    format!(
        "{} {}",
        thousands(n),
        if n == 1 { singular } else { plural }
    )
}

/// A whole number with its thousands grouped by commas: `6,820`, `-1,602`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_said_in_words() {
        assert_eq!(counted(1, "record", "records"), "1 record");
        assert_eq!(counted(0, "record", "records"), "0 records");
        assert_eq!(counted(2150_u64, "record", "records"), "2,150 records");
    }

    #[test]
    fn thousands_are_grouped() {
        let cases = [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (6820, "6,820"),
            (-1602, "-1,602"),
        ];
        for (n, shown) in cases {
            assert_eq!(thousands(n), shown);
        }
        assert_eq!(thousands(1_234_567_890), "1,234,567,890");
    }
}
