//! Resource quantities (`500m`, `128Mi`, `1.5Gi`, `2`, `1e3`), parsed exactly into nano-units, and printed
//! back in Kubernetes' canonical form ([`canonical`]: `1000m` → `1`, `1.5` → `1500m`, `1024Mi` → `1Gi`).

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

/// How a quantity was written, which decides how Kubernetes prints it (`resource.Format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `1500m`, `2`, `5G`
    DecimalSi,
    /// `128Mi`, `1Gi`
    BinarySi,
    /// `1e3`
    DecimalExponent,
}

/// The format of a quantity's text, by its suffix (as Kubernetes' parser decides it).
pub fn format_of(s: &str) -> Format {
    let suffix = s.trim().trim_start_matches(|c: char| c.is_ascii_digit() || matches!(c, '.' | '+' | '-'));
    if suffix.ends_with('i') {
        Format::BinarySi
    } else if suffix.starts_with(['e', 'E']) && suffix.len() > 1 {
        Format::DecimalExponent
    } else {
        Format::DecimalSi
    }
}

impl Amount {
    /// Kubernetes' `Quantity.String()` of this amount in `format`: the shortest exact mantissa with a
    /// suffix of `format`'s family; BinarySI only for whole values of at least 1024 in magnitude.
    pub fn canonical(self, format: Format) -> String {
        if self.0 == 0 {
            return "0".to_string();
        }
        if format == Format::BinarySi && self.0.abs() >= 1024 * NANO && self.0 % NANO == 0 {
            let (mut m, mut exp) = (self.0 / NANO, 0usize);
            while m % 1024 == 0 && exp < 6 {
                m /= 1024;
                exp += 1;
            }
            return format!("{m}{}", ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][exp]);
        }
        // mantissa * 10^exp with the exponent a multiple of 3.
        let (mut m, mut exp) = (self.0, -9i32);
        while m % 10 == 0 {
            m /= 10;
            exp += 1;
        }
        match exp.rem_euclid(3) {
            1 => (m, exp) = (m * 10, exp - 1),
            2 => (m, exp) = (m * 100, exp - 2),
            _ => {}
        }
        if format == Format::DecimalExponent {
            return if exp == 0 { m.to_string() } else { format!("{m}e{exp}") };
        }
        while exp > 18 {
            (m, exp) = (m * 10, exp - 1);
        }
        let suffix = match exp {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            18 => "E",
            _ => "",
        };
        format!("{m}{suffix}")
    }
}

/// A quantity's text in Kubernetes' canonical form (what Kubernetes stores and prints); text that does
/// not parse is returned as it is.
pub fn canonical(s: &str) -> String {
    match parse(s) {
        Ok(a) => a.canonical(format_of(s)),
        Err(_) => s.to_string(),
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

/// A non-negative decimal quantity of `value × 10^-9` (cpu from nanocores) in Kubernetes' canonical form: the largest exponent that is a
/// multiple of 3 with an integer mantissa (`1500000n` → `1500u`, `2000000000n` → `2`, `0`).
pub fn format_decimal_nanos(value: u128) -> String {
    Amount(value as i128).canonical(Format::DecimalSi)
}

/// A non-negative byte count as a binary quantity (memory) in Kubernetes' canonical form: the largest power of 1024 dividing it
/// (`4096` → `4Ki`, `3145728` → `3Mi`); below 1024, or not a multiple of it, the plain number.
pub fn format_binary(value: u128) -> String {
    if value < 1024 {
        return value.to_string();
    }
    let (mut mantissa, mut power) = (value, 0usize);
    while mantissa % 1024 == 0 && power < 6 {
        mantissa /= 1024;
        power += 1;
    }
    let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
    format!("{mantissa}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_canonical_decimal_from_nanocores() {
        assert_eq!(format_decimal_nanos(0), "0");
        assert_eq!(format_decimal_nanos(123_456_789), "123456789n");
        assert_eq!(format_decimal_nanos(1_500_000), "1500u");
        assert_eq!(format_decimal_nanos(250_000_000), "250m");
        assert_eq!(format_decimal_nanos(2_000_000_000), "2");
        assert_eq!(format_decimal_nanos(7), "7n");
    }

    #[test]
    fn memory_is_canonical_format_binary() {
        assert_eq!(format_binary(0), "0");
        assert_eq!(format_binary(1000), "1000");
        assert_eq!(format_binary(4096), "4Ki");
        assert_eq!(format_binary(2_814_136_320), "2748180Ki");
        assert_eq!(format_binary(3 << 20), "3Mi");
        assert_eq!(format_binary(4097), "4097");
        assert_eq!(format_binary(1 << 30), "1Gi");
    }

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

    #[test]
    fn canonical_forms_as_kubernetes_prints_them() {
        for (text, want) in [
            ("1000m", "1"),
            ("1.5", "1500m"),
            ("0.5", "500m"),
            ("2", "2"),
            ("100m", "100m"),
            ("0", "0"),
            ("0Mi", "0"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("500Mi", "500Mi"),
            ("0.5Ki", "512"),
            ("512", "512"),
            ("1000", "1k"),
            ("1500", "1500"),
            ("5G", "5G"),
            ("1e3", "1e3"),
            ("1500e0", "1500"),
            ("1E", "1E"),
            ("12345n", "12345n"),
            ("1.2u", "1200n"),
            ("-2000m", "-2"),
        ] {
            assert_eq!(canonical(text), want, "{text}");
        }
        assert_eq!(canonical("bogus"), "bogus");
        assert_eq!(format_of("64Mi"), Format::BinarySi);
        assert_eq!(format_of("1e3"), Format::DecimalExponent);
        assert_eq!(format_of("1E"), Format::DecimalSi);
    }
}
