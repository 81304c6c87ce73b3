//! Escaping text for HTML: every string that came from an outcome or a campaign passes through
//! [`html`] before it reaches the report, in element content and in attribute values alike.
//! It never decides what is markup; callers write the markup, this only neutralises text.

/// `text` with `& < > " '` replaced by character references, safe in element content and in
/// quoted attribute values.
pub(super) fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// An `id` attribute value made from `key`: ASCII letters, digits, `-` and `_` kept, everything
/// else replaced by `-`, so anchors stay valid whatever the key holds.
pub(super) fn anchor(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_becomes_text() {
        assert_eq!(
            html(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(html("µs ≤ 10"), "µs ≤ 10");
    }

    #[test]
    fn anchors_keep_only_safe_characters() {
        assert_eq!(anchor("rarest-first_2"), "rarest-first_2");
        assert_eq!(anchor("a b\"<c>é"), "a-b--c--");
    }
}
