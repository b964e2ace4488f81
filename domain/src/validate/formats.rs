//! Text formats: email, URL, phone, color, time.

use std::sync::OnceLock;

use regex::Regex;

fn cached(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("static pattern"))
}

pub fn is_email(text: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    cached(&RE, r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$").is_match(text)
}

pub fn is_url(text: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    cached(&RE, r"^[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s/?#]+[^\s]*$").is_match(text)
}

/// Free-form phone numbers: digits with `+ - ( ) . /` spaces and an extension, 3+ digits.
pub fn is_phone(text: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    cached(&RE, r"^\+?[0-9()./\-\s]+((x|ext\.?)\s*[0-9]+)?$").is_match(text) && text.chars().filter(char::is_ascii_digit).count() >= 3
}

/// `HH:mm`, `HH:mm:ss` or `HH:mm:ss.fff`, 24-hour.
pub fn is_time(text: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    cached(&RE, r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$").is_match(text)
}

/// A color in the given format (`hex`, `rgb`, `rgba`, `hsl`); any of them when unset.
pub fn is_color(text: &str, format: Option<&str>) -> bool {
    static HEX: OnceLock<Regex> = OnceLock::new();
    static RGB: OnceLock<Regex> = OnceLock::new();
    static RGBA: OnceLock<Regex> = OnceLock::new();
    static HSL: OnceLock<Regex> = OnceLock::new();
    let hex = || cached(&HEX, r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$").is_match(text);
    let rgb = || cached(&RGB, r"^rgb\(\s*\d{1,3}\s*,\s*\d{1,3}\s*,\s*\d{1,3}\s*\)$").is_match(text);
    let rgba = || cached(&RGBA, r"^rgba\(\s*\d{1,3}\s*,\s*\d{1,3}\s*,\s*\d{1,3}\s*,\s*(0|1|0?\.\d+)\s*\)$").is_match(text);
    let hsl = || cached(&HSL, r"^hsla?\(\s*\d{1,3}\s*,\s*\d{1,3}%\s*,\s*\d{1,3}%\s*(,\s*(0|1|0?\.\d+)\s*)?\)$").is_match(text);
    match format {
        Some("hex") => hex(),
        Some("rgb") => rgb(),
        Some("rgba") => rgba() || rgb(),
        Some("hsl") => hsl(),
        _ => hex() || rgb() || rgba() || hsl(),
    }
}
