//! Resource quantities (`500m`, `128Mi`, `1.5Gi`, `2`, `1e3`), parsed exactly into nano-units.

use std::cmp::Ordering;

use crate::error::Error;
use crate::v1::Quantity;

const NANO: i128 = 1_000_000_000;

/// A parsed quantity in units of 10^-9 (exact for every suffix Kubernetes accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(pub i128);

impl Amount {
    /// Whole units, rounded up (bytes for memory, cores for cpu).
    pub fn value(self) -> i64 {
        ceil_div(self.0, NANO) as i64
    }
    /// Thousandths, rounded up (millicores for cpu).
    pub fn milli_value(self) -> i64 {
        ceil_div(self.0, 1_000_000) as i64
    }
    pub fn is_negative(self) -> bool {
        self.0 < 0
    }
}

fn ceil_div(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b != 0 && (a > 0) == (b > 0) { q + 1 } else { q }
}

impl Quantity {
    /// Parses the quantity; the error says why it is malformed.
    pub fn amount(&self) -> Result<Amount, Error> {
        parse(&self.string)
    }
}

/// Parses Kubernetes' quantity syntax: `<signed number><suffix>` where suffix is a binary SI suffix
/// (Ki Mi Gi Ti Pi Ei), a decimal SI suffix (n u m "" k M G T P E) or a decimal exponent (e3, E-2).
pub fn parse(s: &str) -> Result<Amount, Error> {
    let err = || {
        Error::Quantity(format!(
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$', got {s:?}"
        ))
    };
    let s = s.trim();
    let num_end = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '+' || c == '-'))))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(num_end);
    let (neg, digits) = match num.as_bytes().first() {
        Some(b'-') => (true, &num[1..]),
        Some(b'+') => (false, &num[1..]),
        _ => (false, num),
    };
    if digits.is_empty() || digits == "." || digits.matches('.').count() > 1 {
        return Err(err());
    }
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    // mantissa * 10^-frac_len
    let mantissa: i128 = format!("{int_part}{frac_part}").parse().map_err(|_| err())?;
    let mut exp10: i32 = -(frac_part.len() as i32);
    let mut mul: i128 = 1;
    match suffix {
        "" => {}
        "Ki" => mul = 1 << 10,
        "Mi" => mul = 1 << 20,
        "Gi" => mul = 1 << 30,
        "Ti" => mul = 1 << 40,
        "Pi" => mul = 1 << 50,
        "Ei" => mul = 1 << 60,
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        e if e.starts_with(['e', 'E']) => exp10 += e[1..].parse::<i32>().map_err(|_| err())?,
        _ => return Err(err()),
    }
    // value in nano units = mantissa * mul * 10^(exp10 + 9)
    let shift = exp10 + 9;
    let scaled = mantissa.checked_mul(mul).ok_or_else(err)?;
    let nanos = match shift.cmp(&0) {
        Ordering::Equal => scaled,
        Ordering::Greater => {
            let p = 10i128.checked_pow(shift as u32).ok_or_else(err)?;
            scaled.checked_mul(p).ok_or_else(err)?
        }
        // Below nano precision: round up, as Kubernetes does.
        Ordering::Less => ceil_div(scaled, 10i128.checked_pow((-shift) as u32).ok_or_else(err)?),
    };
    Ok(Amount(if neg { -nanos } else { nanos }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse("500m").unwrap().milli_value(), 500);
        assert_eq!(parse("2").unwrap().milli_value(), 2000);
        assert_eq!(parse("0.5").unwrap().milli_value(), 500);
        assert_eq!(parse("128Mi").unwrap().value(), 128 << 20);
        assert_eq!(parse("1.5Gi").unwrap().value(), 1536 << 20);
        assert_eq!(parse("1e3").unwrap().value(), 1000);
        assert_eq!(parse("1k").unwrap().value(), 1000);
        assert_eq!(parse("100n").unwrap().0, 100);
        assert_eq!(parse("1m").unwrap().value(), 1);
        assert!(parse("-1").unwrap().is_negative());
        for bad in ["", "abc", "1.2.3", "5Xi", ".", "1e", "m"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
