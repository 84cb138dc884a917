//! Python `repr()` of a string and of a float, used verbatim in the SDK's error
//! texts (§9.2 quotes the model's path with `repr`; §9.9 formats seconds as a
//! Python float).

/// `repr(s)` as CPython prints it: single quotes unless the text contains `'` and
/// no `"`; `\\`, `\t`, `\n`, `\r` and the chosen quote escaped; other
/// non-printable characters as `\xNN`, `\uNNNN` or `\UNNNNNNNN`.
pub fn repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if is_printable(c) => out.push(c),
            c => {
                let code = c as u32;
                if code <= 0xff {
                    out.push_str(&format!("\\x{code:02x}"));
                } else if code <= 0xffff {
                    out.push_str(&format!("\\u{code:04x}"));
                } else {
                    out.push_str(&format!("\\U{code:08x}"));
                }
            }
        }
    }
    out.push(quote);
    out
}

/// CPython's `str.isprintable()` for one character, for the character classes a
/// model plausibly sends: controls (Cc), format characters (Cf), separators other
/// than the ASCII space (Zs/Zl/Zp), private use (Co) and noncharacters. Characters
/// unassigned in Unicode (Cn) are treated as printable (no tables shipped).
fn is_printable(c: char) -> bool {
    let code = c as u32;
    let not_printable = matches!(code,
        0x00..=0x1f | 0x7f..=0xa0 | 0xad
        | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890..=0x891 | 0x8e2 | 0x1680 | 0x180e
        | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x2064 | 0x2066..=0x206f
        | 0x3000 | 0xd800..=0xf8ff | 0xfeff | 0xfff9..=0xfffb | 0xfffe..=0xffff
        | 0x110bd | 0x110cd | 0x13430..=0x1343f | 0x1bca0..=0x1bca3 | 0x1d173..=0x1d17a
        | 0xe0001 | 0xe0020..=0xe007f | 0xf0000..=0x10ffff);
    // Every plane ends in two noncharacters (U+xFFFE, U+xFFFF).
    !not_printable && (code & 0xfffe) != 0xfffe
}

/// `repr(x)` of a Python float: shortest round-trip digits, `.0` for integral
/// values, exponent form (`1e-05`, `1e+16`) outside `1e-4 <= |x| < 1e16`.
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // Rust's `{:e}` yields the shortest round-trip digits, e.g. "-1.2345e-5".
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{int}.{frac}")
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{rest}")
        };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_choice_and_escapes() {
        assert_eq!(repr("a.txt"), "'a.txt'");
        assert_eq!(repr("it's"), "\"it's\"");
        assert_eq!(repr("it's \"x\""), "'it\\'s \"x\"'");
        assert_eq!(repr("a\\b"), "'a\\\\b'");
        assert_eq!(repr("a\nb\rc\td"), "'a\\nb\\rc\\td'");
        assert_eq!(repr("\x01\x1b\x7f"), "'\\x01\\x1b\\x7f'");
        assert_eq!(repr(""), "''");
    }

    #[test]
    fn unicode_printability() {
        assert_eq!(repr("café — naïve"), "'café — naïve'");
        assert_eq!(repr("日本"), "'日本'");
        assert_eq!(repr("\u{85}\u{a0}\u{ad}"), "'\\x85\\xa0\\xad'");
        assert_eq!(repr("\u{200b}\u{2028}\u{feff}"), "'\\u200b\\u2028\\ufeff'");
        assert_eq!(repr("\u{e000}"), "'\\ue000'");
        assert_eq!(repr("\u{f0000}😀"), "'\\U000f0000😀'");
    }

    #[test]
    fn python_float_formatting() {
        assert_eq!(float_repr(0.2), "0.2");
        assert_eq!(float_repr(120.0), "120.0");
        assert_eq!(float_repr(5.0), "5.0");
        assert_eq!(float_repr(0.3), "0.3");
        assert_eq!(float_repr(-0.005), "-0.005");
        assert_eq!(float_repr(0.0), "0.0");
        assert_eq!(float_repr(1e-5), "1e-05");
        assert_eq!(float_repr(0.0001), "0.0001");
        assert_eq!(float_repr(1e16), "1e+16");
        assert_eq!(float_repr(123456.789), "123456.789");
        assert_eq!(float_repr(9_223_372_036_854_775.807), "9223372036854776.0");
        assert_eq!(float_repr(1.5e20), "1.5e+20");
    }
}
