//! The naming rules both macros apply: affordance names become URL path segments, and some
//! segments under a Thing are the server's own.

use proc_macro2::Span;

use crate::ctxt::Errors;

/// Names the server routes itself under each Thing, which no affordance may take. The same
/// list is the library's `layout::RESERVED_AFFORDANCE_NAMES`; its test
/// `the_macros_reserve_the_same_affordance_names` keeps the two in step.
const RESERVED: &[&str] = &["ws", "events", "observe", "stop_all"];

/// What kind of item a name belongs to, for the messages.
#[derive(Clone, Copy)]
pub enum Named {
    /// A `#[property]`, `#[setting]` or `#[stream]` field.
    Field,
    /// A method of `#[thing_actions]`.
    Action,
}

/// Checks that `name` can be an affordance's name: a URL-safe segment, not reserved. Returns
/// whether it can.
pub fn check_affordance_name(name: &str, span: Span, named: Named, errors: &mut Errors) -> bool {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let what = match named {
        Named::Field => "a name",
        Named::Action => "an action name",
    };
    if !valid {
        errors.at(
            span,
            format!("`{name}` cannot be {what}: use letters, digits, `_` and `-` only"),
        );
        false
    } else if RESERVED.contains(&name) {
        let fix = match named {
            Named::Field => "rename the field",
            Named::Action => "rename the method or use `#[action(rename = \"...\")]`",
        };
        errors.at(
            span,
            format!("`{name}` is reserved for the server's own routes; {fix}"),
        );
        false
    } else {
        true
    }
}

/// The doc comment's title, and the whole comment. The title is the first sentence of the first
/// paragraph, wrapped lines joined (a comment wrapped at 100 columns must not give a title cut
/// mid-sentence), without its final `.`.
pub fn docs(attrs: &[syn::Attribute]) -> (Option<String>, Option<String>) {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let text = lines.join("\n").trim().to_owned();
    if text.is_empty() {
        return (None, None);
    }
    (Some(first_sentence(&text)), Some(text))
}

/// The first sentence of the first paragraph of `text`, its lines joined, without the `.`.
fn first_sentence(text: &str) -> String {
    let paragraph: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|line| !line.is_empty())
        .collect();
    let paragraph = paragraph.join(" ");
    let end = paragraph
        .match_indices(". ")
        .map(|(at, _)| at)
        .next()
        .unwrap_or(paragraph.len());
    paragraph[..end].trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::first_sentence;

    #[test]
    fn a_title_is_the_first_sentence_with_its_wrapped_lines_joined() {
        assert_eq!(
            first_sentence("One row per sample (10 per second) of\nthe temperature. Then more."),
            "One row per sample (10 per second) of the temperature"
        );
        assert_eq!(
            first_sentence("Exposure time in milliseconds."),
            "Exposure time in milliseconds"
        );
        assert_eq!(first_sentence("A title\n\nA second paragraph."), "A title");
        assert_eq!(first_sentence("Moves by 0.5 mm"), "Moves by 0.5 mm");
    }
}
